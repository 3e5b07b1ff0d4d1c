"""What survives ``AutoReset``'s reset (``Environment.reset_where``): ``NormalizeObservation``'s running statistics
and ``EpisodeStatistics``' counters carry into the next episode, checked against statistics computed by hand from
the same raw observations; wrappers without such state reset exactly as ``AutoReset`` always did."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from envs import wrappers
from envs.core import Environment, EnvParams, EnvSpec
from envs.spaces import Box
from rlkit import running_stats


@struct.dataclass
class WalkerParams(EnvParams):
    max_episode_steps: int = 4
    terminate_at: float = 100.0  # the episode terminates once obs[0] reaches it


class Walker(Environment):
    """obs = position ∈ R²; starts uniform in [0, 0.5]², moves by the action; reward 1."""

    params_cls = WalkerParams

    @property
    def spec(self):
        return EnvSpec("walker", Box.uniform(-np.inf, np.inf, (2,)), Box.uniform(-2, 2, (2,)))

    def _reset(self, key, params):
        x = jax.random.uniform(key, (2,), maxval=0.5)
        return x, x

    def _step(self, key, state, action, params):
        x = state + action
        return x, x, jnp.ones(()), x[0] >= params.terminate_at, jnp.zeros((), bool), {}


ACTION = jnp.asarray([1.0, -0.5])


def test_normalization_statistics_survive_auto_reset_and_match_a_hand_computed_reference():
    base = wrappers.TimeLimit(Walker())
    env = wrappers.AutoReset(wrappers.NormalizeObservation(base))
    raw_env = wrappers.AutoReset(base)  # the same keys reach the raw env: the raw observations behind env's
    step, raw_step = jax.jit(env.step), jax.jit(raw_env.step)
    obs, state = env.reset(jax.random.key(0))
    raw, raw_state = raw_env.reset(jax.random.key(0))
    ref = running_stats.update(running_stats.RunningMeanStd.zeros((2,)), raw[None])
    np.testing.assert_allclose(obs, running_stats.normalize(ref, raw), rtol=1e-6)
    counts, firsts = [float(state.stats.count)], []
    for t in range(13):  # three episodes of 4 steps end, at t = 3, 7, 11
        key = jax.random.key(100 + t)
        obs, state, _, _, truncated, info = step(key, state, ACTION)
        raw, raw_state, _, _, _, raw_info = raw_step(key, raw_state, ACTION)
        assert bool(truncated) == (t % 4 == 3)
        ref = running_stats.update(ref, raw_info["final_obs"][None])  # the episode's last observation
        np.testing.assert_allclose(
            info["final_obs"], running_stats.normalize(ref, raw_info["final_obs"]), rtol=1e-5, atol=1e-6
        )
        if truncated:  # ... then the next episode's first, normalized with the carried statistics
            ref = running_stats.update(ref, raw[None])
            firsts.append(np.asarray(obs))
        np.testing.assert_allclose(obs, running_stats.normalize(ref, raw), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(state.stats.mean, ref.mean, rtol=1e-6)
        np.testing.assert_allclose(state.stats.var, ref.var, rtol=1e-5)
        counts.append(float(state.stats.count))
    assert np.all(np.diff(counts) > 0)  # never restarts
    assert counts[-1] == pytest.approx(1e-4 + 1 + 13 + 3)
    # a fresh reset would normalize the lone first observation to ≈ 0; the carried statistics do not
    assert len(firsts) == 3 and all(np.abs(f[0]) > 0.5 for f in firsts)


def test_shared_statistics_stay_identical_across_envs_that_reset_at_different_steps():
    n, steps = 8, 10
    base = wrappers.TimeLimit(Walker(max_episode_steps=6, terminate_at=2.0))
    env = wrappers.AutoReset(wrappers.NormalizeObservation(base, axis_name="envs"))
    raw_env = wrappers.AutoReset(base)
    # the envs terminate at different steps
    actions = jnp.stack([jnp.linspace(0.3, 1.0, n), jnp.zeros(n)], axis=1)
    keys = jax.random.split(jax.random.key(0), n)
    obs, state = jax.vmap(env.reset, axis_name="envs")(keys)
    raw_obs, raw_state = jax.vmap(raw_env.reset)(keys)
    step = jax.jit(jax.vmap(env.step, axis_name="envs"))
    raw_step = jax.jit(jax.vmap(raw_env.step))
    seen, resets, partial = [np.asarray(raw_obs)], 0, False
    for t in range(steps):
        keys_t = jax.random.split(jax.random.key(100 + t), n)
        obs, state, _, terminated, truncated, _ = step(keys_t, state, actions)
        raw_obs, raw_state, *_, raw_info = raw_step(keys_t, raw_state, actions)
        done = np.asarray(terminated | truncated)
        seen += [np.asarray(raw_info["final_obs"]), np.asarray(raw_obs)[done]]
        resets += int(done.sum())
        partial |= 0 < done.sum() < n
        for leaf in (state.stats.mean, state.stats.var, state.stats.count):
            assert np.ptp(np.asarray(leaf), axis=0).max() == 0.0  # one estimate shared by every env
    assert partial  # on some step some envs reset and others did not
    ref = running_stats.update(running_stats.RunningMeanStd.zeros((2,)), np.concatenate(seen))
    assert float(state.stats.count[0]) == pytest.approx(1e-4 + n + n * steps + resets, rel=1e-6)
    np.testing.assert_allclose(state.stats.mean[0], ref.mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.stats.var[0], ref.var, rtol=1e-4)


def test_episode_statistics_inside_auto_reset_keep_counting_episodes():
    env = wrappers.AutoReset(wrappers.EpisodeStatistics(wrappers.TimeLimit(Walker(max_episode_steps=3))))
    _, state = env.reset(jax.random.key(0))
    step = jax.jit(env.step)
    for t in range(7):
        _, state, *_ = step(jax.random.key(t), state, ACTION)
    assert int(state.episodes) == 2 and int(state.episode_length) == 3 and int(state.running_length) == 1
    np.testing.assert_allclose(state.episode_return, [3.0])
    assert int(state.env_state.elapsed) == 1  # the time limit, by contrast, restarted with the episode


class OldAutoReset(wrappers.AutoReset):
    """``AutoReset`` as it was before ``reset_where``: a fresh ``reset``, selected where done."""

    def _step(self, key, state, action, params):
        step_key, reset_key = jax.random.split(key)
        obs, next_state, reward, terminated, truncated, info = self.env.step(step_key, state, action, params)
        reset_obs, reset_state = self.env.reset(reset_key, params)
        done = jnp.logical_or(terminated, truncated)
        next_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, next_state)
        return jnp.where(done, reset_obs, obs), next_state, reward, terminated, truncated, info


class ShiftStart(wrappers.Wrapper):
    """A wrapper in the older style: it overrides ``_reset`` only (its first observation is shifted by 10)."""

    def _reset(self, key, params):
        obs, state = self.env.reset(key, params)
        return obs + 10.0, state


@pytest.mark.parametrize(
    "wrap",
    [
        lambda e: wrappers.ClipAction(e),
        lambda e: wrappers.FlagNonFinite(wrappers.RescaleAction(e)),
        lambda e: ShiftStart(e),
        lambda e: wrappers.TimeLimit(wrappers.ClipAction(e)),
    ],
    ids=["clip", "flag-rescale", "override-reset-only", "time-limit-outside"],
)
def test_wrappers_without_cross_episode_state_reset_exactly_as_before(wrap):
    inner = wrap(wrappers.TimeLimit(Walker(max_episode_steps=3)))
    new, old = wrappers.AutoReset(inner), OldAutoReset(inner)
    keys = jax.random.split(jax.random.key(1), 4)
    (o1, s1), (o2, s2) = jax.vmap(new.reset)(keys), jax.vmap(old.reset)(keys)
    step_new, step_old = jax.jit(jax.vmap(new.step)), jax.jit(jax.vmap(old.step))
    actions = jnp.tile(ACTION, (4, 1))
    for t in range(7):
        keys_t = jax.random.split(jax.random.key(10 + t), 4)
        o1, s1, *r1 = step_new(keys_t, s1, actions)
        o2, s2, *r2 = step_old(keys_t, s2, actions)
        np.testing.assert_array_equal(o1, o2)
        jax.tree.map(np.testing.assert_array_equal, (s1, r1[:3]), (s2, r2[:3]))
        if isinstance(inner, ShiftStart) and t % 3 == 2:  # its _reset still runs at every auto-reset
            assert np.all(np.asarray(o1) >= 10.0)


def test_reset_where_names_a_bad_done():
    env = wrappers.NormalizeObservation(wrappers.TimeLimit(Walker()))
    _, state = env.reset(jax.random.key(0))
    with pytest.raises(TypeError, match=r"walker: done must be a bool scalar.*shape \(\) dtype float32"):
        env.reset_where(jax.random.key(1), state, jnp.float32(1.0))
    with pytest.raises(TypeError, match=r"done must be a bool scalar.*vmap reset_where.*shape \(2,\)"):
        env.reset_where(jax.random.key(1), state, jnp.zeros(2, bool))
