"""The online replay buffer: ``make_replay_buffer`` returns a frozen bundle of pure functions over a
``ReplayState`` pytree (the flashbax API shape), so a buffer is created once, outside ``jit``, and its functions
are used inside ``jit`` / ``lax.scan`` / ``vmap`` over runs, with the state donated.

    buffer = make_replay_buffer(example_transition, capacity=1_000_000, num_envs=64)
    state = buffer.init()
    state = buffer.add(state, step)              # leaves [num_envs, ...]
    state = buffer.add_chunk(state, rollout)     # leaves [L, num_envs, ...], a scanned rollout
    batch = buffer.sample(state, key, 256)       # leaves [256, ...]

Items are any pytree (observations, actions, vector rewards, ``terminated`` / ``truncated``, skills, goals,
extra fields); their structure, shapes and dtypes are fixed by the example and checked on every add.
Storage layout and sampling rules are explained in ``ring``; n-step targets in ``nstep``; windows in
``sequences``; hindsight goals in ``relabel``.

What it deliberately does not do: prioritised replay, host-side (CPU-RAM) storage for device-sized runs, or
resizing. One buffer holds one run; many runs are ``jax.vmap(buffer.init, axis_size=R)()`` and vmapped calls.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from rlkit.buffers import nstep, relabel, ring, sequences
from rlkit.buffers.ring import ReplayState


@dataclasses.dataclass(frozen=True)
class ReplayBuffer:
    """Pure functions of one replay buffer layout (see each module for shapes and rules).

    init() -> ReplayState
    add(state, step) -> state                                  step leaves [num_envs, ...]
    add_chunk(state, chunk) -> state                           chunk leaves [L, num_envs, ...]
    end_episodes(state) -> state                               cut every env's running episode here
    sample(state, key, batch_size) -> item batch               leaves [batch_size, ...]
    sample_nstep(state, key, batch_size, n, gamma) -> NStepSample
    sample_sequences(state, key, batch_size, length) -> SequenceSample
    sample_goals(state, key, batch_size, mixture) -> GoalSample
    can_sample(state, min_rows=1) -> bool array                rows per env written
    size(state) -> int array                                   valid items (rows × envs)
    """

    layout: ring.RingLayout
    init: Callable[[], ReplayState]
    add: Callable[..., ReplayState]
    add_chunk: Callable[..., ReplayState]
    end_episodes: Callable[..., ReplayState]
    sample: Callable[..., Any]
    sample_nstep: Callable[..., nstep.NStepSample]
    sample_sequences: Callable[..., sequences.SequenceSample]
    sample_goals: Callable[..., relabel.GoalSample]
    can_sample: Callable[..., Any]
    size: Callable[..., Any]


def make_replay_buffer(
    example: Any,
    capacity: int,
    num_envs: int = 1,
    *,
    terminated_field: str = "terminated",
    truncated_field: str = "truncated",
    reward_field: str = "reward",
    obs_field: str = "obs",
    next_obs_field: str = "next_obs",
) -> ReplayBuffer:
    """A ring buffer of ``capacity`` items (``capacity / num_envs`` rows per env) shaped like ``example``.

    example: one item (no batch axis) — arrays or ``ShapeDtypeStruct``s. ``terminated_field`` and
    ``truncated_field`` must be scalar leaves; ``reward_field``, ``obs_field`` and ``next_obs_field`` are only
    read by the n-step and goal samplers."""
    layout = ring.make_layout(example, capacity, num_envs, terminated_field, truncated_field)
    p = functools.partial
    return ReplayBuffer(
        layout=layout,
        init=p(ring.init, layout),
        add=p(ring.add, layout),
        add_chunk=p(ring.add_chunk, layout),
        end_episodes=p(ring.end_episodes, layout),
        sample=p(ring.sample, layout),
        sample_nstep=p(nstep.sample_nstep, layout, reward_field=reward_field, next_obs_field=next_obs_field),
        sample_sequences=p(sequences.sample_sequences, layout),
        sample_goals=p(relabel.sample_goals, layout, obs_field=obs_field, next_obs_field=next_obs_field),
        can_sample=ring.can_sample,
        size=p(ring.size, layout),
    )
