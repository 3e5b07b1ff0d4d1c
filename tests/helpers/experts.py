"""Scripted experts for the imitation tests (no training in a test): a swing-up controller for ``pendulum`` and a
linear balance controller for ``cartpole``, their demonstrations as a ``DemoStore``, and the one-sided
permutation test the learning tests use."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rlkit.buffers import make_demo_store


def pendulum_expert(obs):
    """Energy pumping (dE/dt = 3uθ̇ for E = ½θ̇² + 15 cos θ) far from the top, a PD law near it: ~−130 return."""
    c, s, w = obs[0], obs[1], obs[2]
    energy = 0.5 * w**2 + 15.0 * c
    pump = 2.0 * jnp.sign((15.0 - energy) * w + 1e-6)
    pd = jnp.clip(-(40.0 * jnp.arctan2(s, c) + 8.0 * w) / 3.0, -2.0, 2.0)
    return jnp.where(c > 0.8, pd, pump)[None].astype(jnp.float32)


def cartpole_expert(obs):
    """Push towards the side the pole falls (a linear law on angle, angular velocity, position, velocity)."""
    x, v, th, w = obs[0], obs[1], obs[2], obs[3]
    return (th + 0.5 * w + 0.05 * x + 0.2 * v > 0).astype(jnp.int32)


def rollouts(env, policy, episodes: int, seed: int = 0) -> dict:
    """``episodes`` full episodes (up to the time limit, stopping at termination) of ``policy(obs)``: numpy arrays
    ``obs [E, H + 1, ...]``, ``action [E, H, ...]``, ``reward``, ``terminated``, ``alive [E, H]`` (steps before the
    end) and the per-episode ``return``."""
    horizon = env.spec.max_episode_steps

    def episode(key):
        obs, state = env.reset(key)

        def step(carry, k):
            obs, state, alive = carry
            a = policy(obs)
            nobs, nstate, r, term, trunc, _ = env.step(k, state, a)
            out = (obs, a, r, term, alive)
            return (nobs, nstate, alive & ~term), (out, nobs)

        (_, _, _), ((o, a, r, t, alive), nobs) = jax.lax.scan(
            step, (obs, state, jnp.ones((), bool)), jax.random.split(key, horizon)
        )
        return jnp.concatenate([o, nobs[-1:]]), a, r, t, alive, nobs

    o, a, r, t, alive, nobs = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.key(seed), episodes))
    o, nobs, alive = np.asarray(o), np.asarray(nobs), np.asarray(alive)
    return {
        "obs": o,
        "next_obs": nobs,
        "action": np.asarray(a),
        "reward": np.asarray(r),
        "terminated": np.asarray(t) & alive,
        "alive": alive,
        "return": (np.asarray(r) * alive).sum(axis=1),
    }


def demos_of(env, policy, episodes: int, seed: int = 0):
    """A ``DemoStore`` of ``episodes`` scripted episodes (each cut at its termination or the time limit)."""
    roll = rollouts(env, policy, episodes, seed)
    obs, acts, rews, terms, truncs, lengths = [], [], [], [], [], []
    for e in range(episodes):
        n = int(roll["alive"][e].sum())
        obs.append(np.concatenate([roll["obs"][e, :n], roll["next_obs"][e, n - 1 : n]]))
        acts.append(roll["action"][e, :n])
        rews.append(roll["reward"][e, :n])
        terms.append(roll["terminated"][e, :n])
        truncs.append((np.arange(n) == n - 1) & ~roll["terminated"][e, n - 1])
        lengths.append(n)
    cat = np.concatenate
    return make_demo_store(
        cat(obs), np.asarray(lengths), actions=cat(acts), rewards=cat(rews).astype(np.float32),
        terminations=cat(terms), truncations=cat(truncs),
    )  # fmt: skip


def permutation_p(treated, control, n: int = 20_000, seed: int = 0) -> float:
    """One-sided p-value of mean(treated) > mean(control) under random relabelling of the pooled values."""
    a, b = np.asarray(treated, np.float64), np.asarray(control, np.float64)
    pooled, observed = np.concatenate([a, b]), a.mean() - b.mean()
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((n, pooled.size)), axis=1)
    diffs = pooled[perms[:, : a.size]].mean(axis=1) - pooled[perms[:, a.size :]].mean(axis=1)
    return float((1 + np.sum(diffs >= observed)) / (n + 1))


def trained_and_untrained_returns(env, agent, result, episodes: int = 16, seed: int = 7):
    """Deterministic returns of the first run's trained policy and of a freshly initialized one, on the same
    ``episodes`` initial states: the two samples of a learning test."""

    def returns(state):
        act = lambda obs: agent.act(state, obs, jax.random.key(0), "deterministic")  # noqa: E731
        return rollouts(env, act, episodes, seed)["return"]

    trained = jax.tree.map(lambda x: x[0], result.state.agent_state)
    return returns(trained), returns(jax.jit(agent.init)(jax.random.key(123)))
