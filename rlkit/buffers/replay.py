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

Sampling schemes (``sampling=``, ``rlkit.buffers.sampling``): ``"uniform"`` with replacement (the default),
``"rr"`` random reshuffling (RR-C), ``"per"`` proportional prioritised replay, ``"rr-m"`` RR-M. Their state lives
in ``ReplayState.sampler`` (so it checkpoints and resumes with the buffer); ``add`` / ``add_chunk`` tell the
sampler what they wrote; ``draw`` / ``draw_nstep`` return the new state, the batch, its slot ids and importance
weights; ``update_priorities`` takes the learner's |TD errors| for the drawn slots.

What it deliberately does not do: host-side (CPU-RAM) storage for device-sized runs, or resizing. One buffer holds one run; many runs are ``jax.vmap(buffer.init, axis_size=R)()`` and vmapped calls.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from rlkit.buffers import nstep, relabel, ring, sequences
from rlkit.buffers.ring import ReplayState
from rlkit.buffers.sampling import DEFAULT_ALPHA, DEFAULT_BETA, make_sampler, slots_to_rows


@dataclasses.dataclass(frozen=True)
class ReplayBuffer:
    """Pure functions of one replay buffer layout (see each module for shapes and rules).

    init() -> ReplayState
    add(state, step) -> state                                  step leaves [num_envs, ...]
    add_chunk(state, chunk) -> state                           chunk leaves [L, num_envs, ...]
    end_episodes(state) -> state                               cut every env's running episode here
    sample(state, key, batch_size) -> item batch               leaves [batch_size, ...]
    sample_recent(state, key, batch_size, window) -> item batch   uniform over the newest ``window`` items
    sample_nstep(state, key, batch_size, n, gamma) -> NStepSample
    sample_sequences(state, key, batch_size, length) -> SequenceSample
    sample_goals(state, key, batch_size, mixture) -> GoalSample
    can_sample(state, min_rows=1) -> bool array                rows per env written
    size(state) -> int array                                   valid items (rows × envs)
    draw(state, key, batch_size, *, alpha, beta) -> (state, items, slots [B], weights [B])   by ``sampling``
    draw_nstep(state, key, batch_size, n, gamma, *, alpha, beta) -> (state, NStepSample, slots, weights)
    update_priorities(state, slots, priorities, *, alpha) -> state                          per, rr-m
    """

    layout: ring.RingLayout
    init: Callable[[], ReplayState]
    add: Callable[..., ReplayState]
    add_chunk: Callable[..., ReplayState]
    end_episodes: Callable[..., ReplayState]
    sample: Callable[..., Any]
    sample_recent: Callable[..., Any]
    sample_nstep: Callable[..., nstep.NStepSample]
    sample_sequences: Callable[..., sequences.SequenceSample]
    sample_goals: Callable[..., relabel.GoalSample]
    can_sample: Callable[..., Any]
    size: Callable[..., Any]
    sampling: str = "uniform"
    draw: Callable[..., Any] = None
    draw_nstep: Callable[..., Any] = None
    update_priorities: Callable[..., Any] = None

    @property
    def prioritized(self) -> bool:
        """Whether draws depend on priorities the learner must report (``per``, ``rr-m``)."""
        return self.sampling in ("per", "rr-m")


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
    sampling: str = "uniform",
) -> ReplayBuffer:
    """A ring buffer of ``capacity`` items (``capacity / num_envs`` rows per env) shaped like ``example``.

    example: one item (no batch axis) — arrays or ``ShapeDtypeStruct``s. ``terminated_field`` and
    ``truncated_field`` must be scalar leaves; ``reward_field``, ``obs_field`` and ``next_obs_field`` are only
    read by the n-step and goal samplers. ``sampling``: the scheme of ``draw`` / ``draw_nstep`` (``sample`` and
    the other samplers stay uniform)."""
    layout = ring.make_layout(example, capacity, num_envs, terminated_field, truncated_field)
    sampler = make_sampler(sampling, layout.capacity_per_env, num_envs)
    T = layout.capacity_per_env
    p = functools.partial

    def init():
        state = ring.init(layout)
        return state if sampling == "uniform" else state.replace(sampler=sampler.init())

    def add(state, step):
        new = ring.add(layout, state, step)
        if sampling == "uniform":
            return new
        return new.replace(sampler=sampler.on_add(state.sampler, state.write_row[None], new.count))

    def add_chunk(state, chunk):
        new = ring.add_chunk(layout, state, chunk)
        if sampling == "uniform":
            return new
        length = jax.tree.leaves(chunk)[0].shape[0]
        rows = (state.write_row + jnp.arange(length, dtype=jnp.int32)) % T
        return new.replace(sampler=sampler.on_add(state.sampler, rows, new.count))

    def positions(state, key, batch_size, alpha, beta):
        """``(state, q, env, slots, weights)`` of one draw under ``sampling``."""
        if sampling == "uniform":
            q, env = ring.sample_positions(layout, state, key, (batch_size,))
            slots = ring.physical_row(layout, state, q) * num_envs + env
            return state, q, env, slots, jnp.ones((batch_size,), jnp.float32)
        s, slots, weights = sampler.draw(state.sampler, key, batch_size, state.count, alpha=alpha, beta=beta)
        row, env = slots_to_rows(slots, num_envs)
        q = jnp.mod(row - state.write_row + state.count, T)  # physical row -> logical position
        return state.replace(sampler=s), q, env, slots, weights

    def draw(state, key, batch_size, *, alpha=DEFAULT_ALPHA, beta=DEFAULT_BETA):
        state, q, env, slots, weights = positions(state, key, batch_size, alpha, beta)
        return state, ring.gather(layout, state, state.data, q, env), slots, weights

    def draw_nstep(state, key, batch_size, n, gamma, *, alpha=DEFAULT_ALPHA, beta=DEFAULT_BETA):
        state, q, env, slots, weights = positions(state, key, batch_size, alpha, beta)
        target = nstep.nstep_at(layout, state, q, env, n, gamma, reward_field, next_obs_field)
        return state, target, slots, weights

    def update_priorities(state, slots, priorities, *, alpha=DEFAULT_ALPHA):
        if sampling not in ("per", "rr-m"):
            return state
        return state.replace(sampler=sampler.update(state.sampler, slots, priorities, alpha=alpha))

    return ReplayBuffer(
        layout=layout,
        init=init,
        add=add,
        add_chunk=add_chunk,
        end_episodes=p(ring.end_episodes, layout),
        sample=p(ring.sample, layout),
        sample_recent=p(ring.sample_recent, layout),
        sample_nstep=p(nstep.sample_nstep, layout, reward_field=reward_field, next_obs_field=next_obs_field),
        sample_sequences=p(sequences.sample_sequences, layout),
        sample_goals=p(relabel.sample_goals, layout, obs_field=obs_field, next_obs_field=next_obs_field),
        can_sample=ring.can_sample,
        size=p(ring.size, layout),
        sampling=sampling,
        draw=draw,
        draw_nstep=draw_nstep,
        update_priorities=update_priorities,
    )
