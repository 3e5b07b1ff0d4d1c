"""Unsupervised skill discovery: skill-conditioned learners whose reward terms are learned (DIAYN, ...)."""
