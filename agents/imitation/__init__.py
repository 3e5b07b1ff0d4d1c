"""Imitation learners: agents that learn from demonstrations (``rlkit.buffers.DemoStore``)."""
