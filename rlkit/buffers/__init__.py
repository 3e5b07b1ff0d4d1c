"""rlkit's one replay + demonstration module: on-device, pure-functional, for every algorithm family.

- ``make_replay_buffer``: the online ring buffer (uniform, n-step, sequence and hindsight-goal sampling).
- ``make_demo_store`` / ``DemoStore``: read-only demonstrations (with or without actions), sampled with
  ``demos.sample_transitions`` / ``sample_sequences`` / ``sample_goals`` (the replay buffer's field names).
- ``mix``: several sources in one batch at a fixed or scheduled ratio (a ``Schedule``: any optax schedule), exact
  per (sub-)batch; ``fractions_at`` gives the fractions at a step, ``row_sources`` the source of each row.
- ``save_npz`` / ``load_npz`` / ``save_minari`` / ``load_minari``: demonstration datasets on disk.

It does not hold agents' logic (rewards from discriminators, goal-conditioned rewards): samplers return data
and indices, learners decide what they mean.
"""

from rlkit.buffers import demos
from rlkit.buffers.datasets import DatasetError, load_minari, load_npz, save_minari, save_npz
from rlkit.buffers.demos import DemoStore, make_demo_store
from rlkit.buffers.mixing import Schedule, fractions_at, mix, row_sources
from rlkit.buffers.nstep import NStepSample
from rlkit.buffers.relabel import FutureSampling, GoalMixture, GoalSample
from rlkit.buffers.replay import ReplayBuffer, make_replay_buffer
from rlkit.buffers.ring import ReplayState
from rlkit.buffers.sequences import SequenceSample

__all__ = [
    "DatasetError",
    "DemoStore",
    "FutureSampling",
    "GoalMixture",
    "GoalSample",
    "NStepSample",
    "ReplayBuffer",
    "ReplayState",
    "Schedule",
    "SequenceSample",
    "demos",
    "fractions_at",
    "load_minari",
    "load_npz",
    "make_demo_store",
    "make_replay_buffer",
    "mix",
    "row_sources",
    "save_minari",
    "save_npz",
]
