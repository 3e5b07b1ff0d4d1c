"""The classic envs batched: ``jax.jit(jax.vmap(step))`` over 1024 envs behind ``AutoReset`` (``envs.make`` adds
``TimeLimit``), as the training loops run them.

Checks shapes and dtypes of every output, that envs whose episode ended come back reset (fresh time-limit
counter, a start-distribution observation consistent with the new state, the pre-reset observation in
``info["final_obs"]``) while the others carry on, and that batch elements equal the unbatched step.
The time limit is lowered through params (it is a sweepable leaf) so truncations happen within a few dozen steps.
Deliberately not here: parity with Gymnasium (``test_classic_parity.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.wrappers import AutoReset

NUM_ENVS = 1024
STEPS = 40
TIME_LIMIT = 15

# Per env: a predicate on a batch of freshly reset observations (Gymnasium's start laws; see envs.classic).
FRESH_OBS = {
    "pendulum": lambda o: (np.abs(o[:, 2]) <= 1.0) & np.isclose(o[:, 0] ** 2 + o[:, 1] ** 2, 1.0, atol=1e-5),
    "cartpole": lambda o: np.all(np.abs(o) <= 0.05, axis=1),
    "mountain-car-continuous": lambda o: (o[:, 0] >= -0.6) & (o[:, 0] <= -0.4) & (o[:, 1] == 0.0),
    # (cos, sin) of two angles in [-0.1, 0.1] and two velocities in [-0.1, 0.1]
    "acrobot": lambda o: (
        np.all(o[:, [0, 2]] >= np.float32(np.cos(0.1)) - 1e-6, axis=1)
        & np.all(np.abs(o[:, [1, 3, 4, 5]]) <= 0.1, axis=1)
        & np.isclose(o[:, 0] ** 2 + o[:, 1] ** 2, 1.0, atol=1e-5)
        & np.isclose(o[:, 2] ** 2 + o[:, 3] ** 2, 1.0, atol=1e-5)
    ),
}


def _compare(batched, single, where: str):
    for b, s in zip(jax.tree.leaves(batched), jax.tree.leaves(single), strict=True):
        b, s = np.asarray(b), np.asarray(s)
        if np.issubdtype(b.dtype, np.floating):
            np.testing.assert_allclose(b, s, rtol=1e-6, atol=1e-6, err_msg=where)
        else:
            np.testing.assert_array_equal(b, s, err_msg=where)


@pytest.mark.parametrize("env_id", list(FRESH_OBS))
def test_vmapped_autoreset_step(env_id: str):
    env = AutoReset(envs.make(env_id))
    params = env.default_params.replace(max_episode_steps=TIME_LIMIT)
    spec = env.spec
    obs_shape = spec.observation_space.shape
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    unbatched_step = jax.jit(env.step)
    sample_actions = jax.jit(jax.vmap(spec.action_space.sample))
    observe = jax.jit(jax.vmap(env.unwrapped._obs))

    key = jax.random.key(0)
    key, sub = jax.random.split(key)
    obs, state = reset(jax.random.split(sub, NUM_ENVS), params)
    assert obs.shape == (NUM_ENVS, *obs_shape) and obs.dtype == jnp.float32
    seen = {"terminated": 0, "truncated": 0}

    for t in range(STEPS):
        key, k_act, k_step = jax.random.split(key, 3)
        actions = sample_actions(jax.random.split(k_act, NUM_ENVS))
        step_keys = jax.random.split(k_step, NUM_ENVS)
        out = step(step_keys, state, actions, params)
        new_obs, new_state, reward, terminated, truncated, info = out

        assert new_obs.shape == (NUM_ENVS, *obs_shape) and new_obs.dtype == jnp.float32
        assert reward.shape == (NUM_ENVS,) and reward.dtype == jnp.float32
        assert terminated.shape == truncated.shape == (NUM_ENVS,)
        assert terminated.dtype == truncated.dtype == jnp.bool_
        assert info["final_obs"].shape == (NUM_ENVS, *obs_shape) and info["final_obs"].dtype == jnp.float32

        done = np.asarray(terminated | truncated)
        elapsed = np.asarray(new_state.elapsed)
        o, final = np.asarray(new_obs), np.asarray(info["final_obs"])
        # Done envs restart: counter back to 0, a start-law observation that is the new state's observation.
        np.testing.assert_array_equal(elapsed[done], 0)
        np.testing.assert_array_equal(elapsed[~done], np.asarray(state.elapsed)[~done] + 1)
        assert np.all(FRESH_OBS[env_id](o[done])), f"step {t}: a reset env has a non-start observation"
        np.testing.assert_array_equal(o, np.asarray(observe(new_state.env_state)))
        # The others carry on: the returned observation is the pre-reset one.
        np.testing.assert_array_equal(o[~done], final[~done])
        # Truncation comes exactly at the (lowered) limit, from the time-limit counter alone.
        np.testing.assert_array_equal(np.asarray(truncated), np.asarray(state.elapsed) + 1 >= TIME_LIMIT)
        seen["terminated"] += int(np.sum(np.asarray(terminated)))
        seen["truncated"] += int(np.sum(np.asarray(truncated)))

        # Batch elements equal the unbatched step (a few fixed indices and the first env that just reset).
        indices = {0, 17, 511, NUM_ENVS - 1}
        if done.any():
            indices.add(int(np.argmax(done)))
        for i in sorted(indices):
            one = unbatched_step(step_keys[i], jax.tree.map(lambda x, i=i: x[i], state), actions[i], params)
            _compare(jax.tree.map(lambda x, i=i: x[i], out), one, f"{env_id} step {t} env {i}")
        obs, state = new_obs, new_state

    assert seen["truncated"] > 0, "no truncation seen: the rollover was not exercised"
    if env_id == "cartpole":  # random pushes drop the pole within ~10-40 steps
        assert seen["terminated"] > 0, "no termination seen: the rollover was not exercised"


@pytest.mark.parametrize("env_id", list(FRESH_OBS))
def test_render_batches(env_id: str):
    env = envs.make(env_id)
    _, states = jax.vmap(env.reset)(jax.random.split(jax.random.key(0), 3))
    frames = jax.jit(jax.vmap(env.render))(states)
    single = np.asarray(jax.jit(env.render)(jax.tree.map(lambda x: x[1], states)))
    assert frames.dtype == jnp.uint8 and frames.ndim == 4 and frames.shape[0] == 3 and frames.shape[-1] == 3
    np.testing.assert_array_equal(np.asarray(frames[1]), single)
    assert np.any(single < 128), "the frame is blank"
