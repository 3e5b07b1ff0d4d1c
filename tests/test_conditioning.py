"""rlkit.conditioning: priors (shapes, supports, moments, densities), the ``Conditioned`` wrapper under the rollout
stack (z held per episode, fresh at every reset, resampled every N steps, ``final_obs`` carrying the transition's
z), the host-side ``resample`` rule, bad input, and jit / vmap / pytree behaviour."""

from __future__ import annotations

import math
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.core import Environment, EnvSpec
from envs.spaces import Box
from envs.wrappers import TimeLimit
from rlkit import conditioning as cond
from rlkit.configs import ConfigError
from rlkit.rollout import wrap_for_rollout

EPISODE = 20  # point-room episodes are shortened to this many steps


def _rollout(env, num_envs: int, steps: int, seed: int = 0):
    """Scan ``env`` (vmapped over ``num_envs``) with random actions: the first observation ``[num_envs, D]`` and the
    per-step ``obs``, ``done``, ``info`` (``[steps, num_envs, ...]``), as JAX arrays."""
    keys = jax.random.split(jax.random.key(seed), num_envs)
    obs0, state = jax.vmap(env.reset)(keys)

    def body(state, key):
        k_act, k_step = jax.random.split(key)
        action = jax.random.uniform(k_act, (num_envs, 2), minval=-1.0, maxval=1.0)
        obs, state, _, term, trunc, info = jax.vmap(env.step)(
            jax.random.split(k_step, num_envs), state, action
        )
        return state, (obs, term | trunc, info)

    _, (obs, done, info) = jax.jit(
        lambda s: jax.lax.scan(body, s, jax.random.split(jax.random.key(seed + 1), steps))
    )(state)
    return obs0, obs, done, info


def _point_room():
    return envs.make("point-room", max_episode_steps=EPISODE)


# ---------------------------------------------------------------------------------------------- the wrapper
def test_skills_are_held_per_episode_fresh_at_each_reset_and_uniform():
    k, num_envs, steps = 8, 128, 3 * EPISODE + 10  # > 3 episodes per env
    env = wrap_for_rollout(cond.Conditioned(_point_room(), cond.categorical(k)))
    obs0, obs, done, info = jax.tree.map(np.asarray, _rollout(env, num_envs, steps))
    z = info["z"]
    assert z.shape == (steps, num_envs, k) and obs.shape == (steps, num_envs, 2 + k)
    assert np.array_equal(
        done, np.broadcast_to((np.arange(steps) % EPISODE == EPISODE - 1)[:, None], done.shape)
    )
    # the z of each transition is the one on the observation it was taken from
    acted_on = np.concatenate([obs0[None], obs[:-1]])
    np.testing.assert_array_equal(acted_on[..., -k:], z)
    # constant within an episode; on non-final steps the returned obs carries it
    same = np.all(z[1:] == z[:-1], axis=-1)
    assert same[~done[:-1]].all()
    np.testing.assert_array_equal(obs[~done][:, -k:], z[~done])
    # at the boundary: final_obs is (true next xy, the ending episode's z); the reset obs has a fresh z
    np.testing.assert_array_equal(info["final_obs"][..., -k:], z)
    np.testing.assert_array_equal(info["final_obs"][..., :2], info["xy"])
    assert 0.75 < 1.0 - same[done[:-1]].mean() < 0.97  # a fresh draw differs from the old with p = 7/8
    # every episode's skill, over all envs: roughly uniform (chi-square, 7 dof; 24.3 is its 0.999 quantile)
    first = np.concatenate([np.ones((1, num_envs), bool), done[:-1]])
    counts = np.bincount(z[first].argmax(-1), minlength=k)
    expected = first.sum() / k
    assert (counts > 0).all() and ((counts - expected) ** 2 / expected).sum() < 24.3
    assert np.all(z.sum(-1) == 1.0) and set(np.unique(z)) == {0.0, 1.0}


@pytest.mark.parametrize("as_traced", [False, True])
def test_resample_every_n_changes_z_exactly_at_multiples_of_n_and_at_resets(as_traced):
    n, size, num_envs, steps = 6, 3, 8, 2 * EPISODE + 5  # 6, 12, 18 inside an episode; 20 ends it
    prior = cond.gaussian(size)  # continuous: any two draws differ, so every change shows

    def run(every):
        return _rollout(wrap_for_rollout(cond.Conditioned(_point_room(), prior, every)), num_envs, steps)

    obs0, obs, done, info = jax.tree.map(np.asarray, run(n))
    if as_traced:  # resample_every traced: the wrapper is built inside jit, as a sweep over it would
        traced = jax.tree.map(np.asarray, jax.jit(run)(jnp.asarray(n)))
        jax.tree.map(np.testing.assert_array_equal, traced, (obs0, obs, done, info))
    z = info["z"]
    t_in_episode = np.arange(steps) % EPISODE + 1  # the step just taken, counted from 1
    expected = (t_in_episode % n == 0) | (t_in_episode == EPISODE)
    changed = np.any(z[1:] != z[:-1], axis=-1)  # between transition t and t+1
    np.testing.assert_array_equal(changed, np.broadcast_to(expected[:-1, None], changed.shape))
    np.testing.assert_array_equal(obs[:-1, :, -size:], z[1:])  # the returned obs carries the z acted on next
    # the bootstrap target keeps the transition's own z, also on resample steps
    np.testing.assert_array_equal(info["final_obs"][..., -size:], z)
    resampled = expected & (t_in_episode != EPISODE)
    assert np.all(obs[resampled][..., -size:] != info["final_obs"][resampled][..., -size:])


def test_no_periodic_resample_on_the_step_that_ends_the_episode():
    """Without AutoReset the returned observation on a truncating step is the transition's next obs: old z."""
    env = cond.Conditioned(envs.make("point-room", max_episode_steps=10), cond.gaussian(2), resample_every=5)
    obs, state = env.reset(jax.random.key(0))
    step = jax.jit(env.step)
    for t in range(1, 11):
        z_before = state.z
        obs, state, _, _, truncated, info = step(jax.random.key(t), state, jnp.ones(2))
        np.testing.assert_array_equal(info["z"], z_before)
        changed = bool(jnp.any(obs[-2:] != z_before))
        assert changed == (t == 5), t  # resampled at 5; at 10 (a multiple, but truncated) it is held
    assert bool(truncated)


class _NoiseEnv(Environment):
    """obs = N(0, I) drawn from the reset key (to see whether z and the inner reset share a key)."""

    def __init__(self, shape=(3,)):
        super().__init__()
        self.shape = shape

    @property
    def spec(self):
        return EnvSpec("noise", Box.uniform(-np.inf, np.inf, self.shape), Box.uniform(-1, 1, (2,)))

    def _reset(self, key, params):
        x = jax.random.normal(key, self.shape)
        return x, x

    def _step(self, key, state, action, params):
        return state, state, jnp.zeros(()), jnp.zeros((), bool), jnp.zeros((), bool), {}


def test_z_and_the_inner_reset_use_different_keys_from_the_reset_key():
    env = cond.Conditioned(_NoiseEnv(), cond.gaussian(3))
    for seed in range(3):
        key = jax.random.key(seed)
        obs, state = env.reset(key)
        inner, z = cond.split(obs, 3)
        assert not np.allclose(inner, z)
        np.testing.assert_array_equal(z, state.z)
        assert not np.allclose(z, cond.gaussian(3).sample(key))
    # reset_where as AutoReset calls it: independent keys too, and a fresh z where done only
    _, fresh = env.reset_where(jax.random.key(7), state, jnp.asarray(True))
    _, kept = env.reset_where(jax.random.key(7), state, jnp.asarray(False))
    assert not np.allclose(fresh.env_state, fresh.z) and not np.allclose(fresh.z, state.z)
    np.testing.assert_array_equal(kept.z, state.z)


def test_spec_repr_render_and_split():
    base = _point_room()
    env = cond.Conditioned(base, cond.centred_one_hot(4))
    box = env.spec.observation_space
    assert env.spec.id == base.spec.id == "point-room"
    np.testing.assert_array_equal(box.low, np.float32([-10, -10, -1 / 3, -1 / 3, -1 / 3, -1 / 3]))
    np.testing.assert_array_equal(box.high, [10, 10, 1, 1, 1, 1])
    assert "centred_one_hot" in repr(env) and "point-room" in repr(env)
    assert np.isinf(cond.Conditioned(base, cond.gaussian(2)).spec.observation_space.low[2:]).all()
    obs, state = env.reset(jax.random.key(0))
    assert box.contains(np.asarray(obs))
    np.testing.assert_array_equal(env.render(state), base.render(state.env_state))
    xy, z = cond.split(obs, 4)
    np.testing.assert_array_equal(xy, [0.0, 0.0])
    np.testing.assert_array_equal(z, state.z)
    xy, z = cond.split(jnp.zeros((5, 7, 6)), 4)
    assert xy.shape == (5, 7, 2) and z.shape == (5, 7, 4)


def test_jit_vmap_and_the_state_is_a_picklable_pytree():
    env = cond.Conditioned(_point_room(), cond.unit_sphere(3), resample_every=4)
    keys = jax.random.split(jax.random.key(0), 5)
    obs, state = jax.jit(jax.vmap(env.reset))(keys)
    assert obs.shape == (5, 5) and state.z.shape == (5, 3) and state.steps_since.shape == (5,)
    eager_obs, eager_state = env.reset(keys[2])
    np.testing.assert_allclose(obs[2], eager_obs, rtol=1e-6)
    np.testing.assert_array_equal(obs[:, -3:], state.z)  # bit for bit: the learner sees the z in the state
    step = jax.jit(jax.vmap(env.step))
    obs, state, *_ = step(keys, state, jnp.ones((5, 2)))
    leaves, treedef = jax.tree.flatten(state)
    rebuilt = jax.tree.unflatten(treedef, leaves)
    assert isinstance(rebuilt, cond.ConditionedState) and jax.tree.structure(rebuilt) == treedef
    loaded = pickle.loads(pickle.dumps(jax.tree.map(np.asarray, state)))
    for a, b in zip(jax.tree.leaves(loaded), leaves):
        np.testing.assert_array_equal(a, b)
    obs2, *_ = step(keys, rebuilt, jnp.ones((5, 2)))  # steps on from the round-tripped state
    obs3, *_ = step(keys, jax.tree.map(jnp.asarray, loaded), jnp.ones((5, 2)))
    np.testing.assert_array_equal(obs2, obs3)
    np.testing.assert_array_equal(state.steps_since, np.ones(5))


# ---------------------------------------------------------------------------------------------- resample (host)
def test_resample_rule_batched_as_a_host_loop_uses_it():
    prior = cond.categorical(5)
    z = np.tile(np.eye(5, dtype=np.float32)[0], (6, 1))
    steps = np.array([1, 3, 4, 7, 2, 0])
    done = np.array([False, False, False, False, True, False])
    z2, steps2, mask = cond.resample(prior, jax.random.key(0), z, steps, done, 4)
    np.testing.assert_array_equal(mask, [False, False, True, True, True, False])
    np.testing.assert_array_equal(steps2, [1, 3, 0, 0, 0, 0])
    np.testing.assert_array_equal(np.asarray(z2)[~mask], z[~mask])
    assert z2.shape == (6, 5) and np.all(np.asarray(z2).sum(-1) == 1)
    _, _, mask0 = cond.resample(prior, jax.random.key(0), z, steps, done, 0)  # 0: only new episodes
    np.testing.assert_array_equal(mask0, done)
    # each env gets its own draw: over many envs all done, the draws are not all the same
    zs, _, _ = cond.resample(prior, jax.random.key(1), np.zeros((64, 5)), np.zeros(64), np.ones(64, bool), 0)
    assert len(np.unique(np.asarray(zs).argmax(-1))) == 5


# ---------------------------------------------------------------------------------------------- priors
def _draws(prior, n=10_000):
    return np.asarray(jax.jit(jax.vmap(prior.sample))(jax.random.split(jax.random.key(0), n)))


def test_categorical_is_one_hot_uniform_with_log_prob_minus_log_k():
    prior = cond.categorical(6)
    z = _draws(prior)
    assert z.shape == (10_000, 6) and z.dtype == np.float32
    assert set(np.unique(z)) == {0.0, 1.0} and np.all(z.sum(-1) == 1)
    freq = np.bincount(np.asarray(prior.index_of(z)), minlength=6) / len(z)
    np.testing.assert_allclose(freq, 1 / 6, atol=0.015)
    np.testing.assert_allclose(jax.vmap(prior.log_prob)(z[:50]), -math.log(6), rtol=1e-6)
    assert prior.log_prob(jnp.full(6, 1 / 6)) == -np.inf
    assert prior.discrete and prior.num_skills == 6
    np.testing.assert_array_equal(prior.low, np.zeros(6))
    np.testing.assert_array_equal(prior.high, np.ones(6))


def test_centred_one_hot_matches_metras_formula():
    k = 5
    prior = cond.centred_one_hot(k)
    z = _draws(prior, 2000)
    idx = np.asarray(prior.index_of(z))
    onehot = np.eye(k)[idx]
    np.testing.assert_allclose(z, (onehot - onehot.mean(1, keepdims=True)) * k / (k - 1), atol=1e-6)
    np.testing.assert_allclose(z.sum(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.max(-1), 1.0)
    np.testing.assert_allclose(z.min(-1), -1 / (k - 1), rtol=1e-6)
    assert len(np.unique(idx)) == k
    np.testing.assert_allclose(prior.log_prob(z[0]), -math.log(k), rtol=1e-6)
    assert prior.log_prob(jnp.eye(k)[0]) == -np.inf  # a plain one-hot is off this support


def test_gaussian_moments_and_density():
    prior = cond.gaussian(4, scale=2.0)
    z = _draws(prior)
    assert z.shape == (10_000, 4) and z.dtype == np.float32
    np.testing.assert_allclose(z.mean(0), 0.0, atol=0.1)
    np.testing.assert_allclose(z.std(0), 2.0, rtol=0.03)
    np.testing.assert_allclose(np.cov(z.T), 4 * np.eye(4), atol=0.25)
    ref = jax.scipy.stats.norm.logpdf(z[:10], scale=2.0).sum(-1)
    np.testing.assert_allclose(jax.vmap(prior.log_prob)(z[:10]), ref, rtol=1e-5)


@pytest.mark.parametrize("d, area", [(2, 2 * math.pi), (3, 4 * math.pi)])
def test_unit_sphere_has_unit_norm_is_isotropic_and_uniform_density(d, area):
    prior = cond.unit_sphere(d)
    z = _draws(prior)
    assert z.shape == (10_000, d) and z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(z, axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=0.03)
    np.testing.assert_allclose(np.cov(z.T), np.eye(d) / d, atol=0.02)
    np.testing.assert_allclose(prior.log_prob(z[0]), -math.log(area), rtol=1e-6)


def test_uniform_fills_the_box_with_density_two_to_the_minus_d():
    prior = cond.uniform(3)
    z = _draws(prior)
    assert z.shape == (10_000, 3) and z.dtype == np.float32 and np.all(np.abs(z) <= 1.0)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=0.03)
    np.testing.assert_allclose(np.cov(z.T), np.eye(3) / 3, atol=0.02)  # var of U(-1, 1) = 1/3
    np.testing.assert_allclose(prior.log_prob(z[0]), -3 * math.log(2.0), rtol=1e-6)
    assert prior.log_prob(jnp.array([0.0, 1.5, 0.0])) == -np.inf


def test_goals_from_a_sampler_over_point_rooms_floor():
    prior = cond.goals(lambda key: jax.random.uniform(key, (2,), minval=-10, maxval=10), 2, -10.0, 10.0)
    z = _draws(prior, 1000)
    assert z.shape == (1000, 2) and z.dtype == np.float32 and prior.log_prob is None and not prior.discrete
    assert np.all((z >= -10) & (z <= 10)) and z.std() > 5
    env = cond.Conditioned(_point_room(), prior)
    np.testing.assert_array_equal(env.spec.observation_space.high, [10, 10, 10, 10])
    with pytest.raises(ConfigError, match=r"shape \(3,\), expected \(2,\)"):
        cond.goals(lambda key: jnp.zeros(3), 2, -1.0, 1.0)


@pytest.mark.parametrize("kind", sorted(cond.PRIORS))
def test_make_prior_maps_each_kind(kind):
    prior = cond.make_prior(kind, 4)
    assert prior.name == kind and prior.size == 4 and prior.sample(jax.random.key(0)).shape == (4,)
    z = _draws(prior, 500)
    assert np.all((z >= prior.low) & (z <= prior.high))


# ---------------------------------------------------------------------------------------------- bad input
def _one_line(excinfo, *needles):
    message = str(excinfo.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)


def test_bad_prior_arguments_raise_one_line_errors_naming_the_value():
    with pytest.raises(ConfigError) as e:
        cond.make_prior("nope", 4)
    _one_line(e, "'nope'", "categorical", "centred_one_hot", "gaussian", "unit_sphere")
    for bad in (lambda: cond.categorical(1), lambda: cond.make_prior("centred_one_hot", 1)):
        with pytest.raises(ConfigError) as e:
            bad()
        _one_line(e, "got 1", ">= 2")
    with pytest.raises(ConfigError) as e:
        cond.make_prior("gaussian", 0)
    _one_line(e, "got 0")
    with pytest.raises(ConfigError) as e:
        cond.unit_sphere(2.5)
    _one_line(e, "got 2.5")
    with pytest.raises(ConfigError) as e:
        cond.gaussian(2, scale=0.0)
    _one_line(e, "got 0.0")
    with pytest.raises(TypeError) as e:
        cond.gaussian(2).index_of(jnp.zeros(2))
    _one_line(e, "gaussian")


def test_bad_wrapper_arguments_raise_one_line_errors_naming_the_value():
    with pytest.raises(ConfigError) as e:
        cond.Conditioned(_NoiseEnv((4, 4)), cond.categorical(3))
    _one_line(e, "noise", "(4, 4)")
    with pytest.raises(ConfigError) as e:
        cond.Conditioned(_point_room(), cond.categorical(3), resample_every=-1)
    _one_line(e, "got -1")
    with pytest.raises(ConfigError) as e:
        cond.Conditioned(_point_room(), cond.categorical(3), resample_every=2.5)
    _one_line(e, "got 2.5")
    with pytest.raises(TypeError) as e:
        cond.Conditioned(_point_room(), "categorical")
    _one_line(e, "'categorical'", "Prior")
    assert (
        cond.Conditioned(
            TimeLimit(_NoiseEnv()), cond.categorical(2), resample_every=np.int64(3)
        ).resample_every
        == 3
    )
