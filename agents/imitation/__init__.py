"""Imitation learners: behavioural cloning (``bc``) first; learners from demonstrations to follow."""
