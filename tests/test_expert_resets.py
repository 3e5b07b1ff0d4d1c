"""Expert-state resets (``rlkit.resets``): a reset into a demonstration step restores exactly that step (its stored
observation and state; stepping on with the expert's action gives the stored next observation and reward), p = 0
is the env's own reset bit for bit, p = 1 always an expert state, p = 0.5 within a binomial bound (also traced and
swept under vmap), every AutoReset inside a training chunk goes through the wrapper, the time limit keeps the
expert's clock, and every wrong input is one ConfigError line. MuJoCo (Gymnasium host side) tests skip without
``mujoco``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import envs
from agents import sac
from envs.wrappers import AutoReset, ClipAction
from experiments.demos import _episodes_to_store, rollout_jax
from rlkit.buffers import demos, make_demo_store
from rlkit.buffers.datasets import ENV_STATE_KEY, env_state_to_tree
from rlkit.configs import ConfigError, param
from rlkit.off_policy import make_off_policy_trainer
from rlkit.resets import ExpertResets, GymnasiumExpertResets
from rlkit.sweeps import make_runs
from rlkit.training import train

H = 40  # short episodes keep every test small


def pendulum_policy(obs, key):
    return jnp.clip(-2.0 * obs[1] - 0.5 * obs[2], -2.0, 2.0)[None] + 0.3 * jax.random.normal(key, (1,))


def cartpole_policy(obs, key):
    noisy = obs[2] + 0.5 * obs[3] + 0.05 * jax.random.normal(key)
    return (noisy > 0).astype(jnp.int32)


POLICIES = {"pendulum": pendulum_policy, "cartpole": cartpole_policy}


def collect(name: str, episodes: int = 4, seed: int = 0):
    """Demonstrations of a scripted noisy policy, stepped one jitted ``env.step`` at a time (the very program
    the tests step with), with the state before each action in ``extras["env_state"]``, as ``rlkit demos
    collect`` stores it. Returns the env and the store."""
    env = envs.make(name, max_episode_steps=H)
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    act = jax.jit(POLICIES[name])
    rows = {k: [] for k in ("obs", "actions", "rewards", "terminations", "truncations", "states")}
    lengths = []
    for key in jax.random.split(jax.random.key(seed), episodes):
        reset_key, key = jax.random.split(key)
        obs, state = reset(reset_key)
        rows["obs"].append(obs)
        for t in range(H):
            act_key, step_key = jax.random.split(jax.random.fold_in(key, t))
            action = act(obs, act_key)
            rows["states"].append(state)
            obs, state, reward, term, trunc, _ = step(step_key, state, action)
            for k, v in (
                ("actions", action),
                ("rewards", reward),
                ("terminations", term),
                ("truncations", trunc),
            ):
                rows[k].append(v)
            rows["obs"].append(obs)
            if term or trunc:
                break
        lengths.append(t + 1)
    stack = lambda xs: jax.tree.map(lambda *x: np.stack(x), *xs)  # noqa: E731
    store = make_demo_store(
        stack(rows["obs"]),
        np.asarray(lengths),
        actions=stack(rows["actions"]),
        rewards=stack(rows["rewards"]),
        terminations=stack(rows["terminations"]),
        truncations=stack(rows["truncations"]),
        extras={ENV_STATE_KEY: env_state_to_tree(stack(rows["states"]))},
    )
    return env, store


@pytest.fixture(scope="module")
def demo_sets():
    return {name: collect(name) for name in POLICIES}


def match_step(store, obs) -> np.ndarray:
    """For each row of ``obs`` the demonstration step with exactly that observation (-1 where none)."""
    stored = np.asarray(demos.transitions_at(store, jnp.arange(store.num_steps))["obs"])
    eq = np.all(np.asarray(obs)[:, None] == stored[None], axis=-1)
    return np.where(eq.any(1), eq.argmax(1), -1)


def trees_equal(a, b) -> bool:
    return all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(np.array_equal(x, y)), a, b)))


# ------------------------------------------------------------------------------------------ exact restoration
@pytest.mark.parametrize("name", ["pendulum", "cartpole"])
def test_a_reset_into_an_expert_step_reproduces_it(demo_sets, name):
    env, store = demo_sets[name]
    wrapped = ExpertResets(env, store, 1.0)
    obs, state = jax.jit(jax.vmap(wrapped.reset))(jax.random.split(jax.random.key(1), 16))
    steps = match_step(store, obs)
    assert (steps >= 0).all()  # every reset is a stored observation ...
    t = demos.transitions_at(store, jnp.asarray(steps))
    stored_states = jax.tree.map(lambda x: np.asarray(x)[steps], store.extras[ENV_STATE_KEY])
    assert trees_equal(env_state_to_tree(state), stored_states)  # ... with exactly its stored state
    step = jax.jit(env.step)  # the program the demonstrations were stepped with
    for j in range(len(steps)):
        s = jax.tree.map(lambda x, j=j: x[j], state)
        next_obs, _, reward, term, trunc, _ = step(jax.random.key(0), s, t["action"][j])
        np.testing.assert_array_equal(np.asarray(next_obs), np.asarray(t["next_obs"][j]))
        np.testing.assert_array_equal(np.asarray(reward), np.asarray(t["reward"][j]))
        # the expert's clock came along: the step that ended the demonstration episode ends this one too
        assert bool(trunc) == bool(t["truncated"][j]) and bool(term) == bool(t["terminated"][j])


def test_states_from_the_collect_rollout_restore_exactly():
    # rlkit demos collect's own rollout (rollout_jax, a jitted vmapped scan): the restored observation and state
    # are exactly the stored ones. Stepping on agrees to float32 rounding only: XLA fuses that program's step
    # differently from a lone jitted step (it even computes pendulum's new θ̇ in two fusions there, so a stored
    # observation can differ from its own state's θ̇ by an ulp), which is why the reset returns the stored
    # observation rather than recomputing one from the state.
    env = envs.make("pendulum", max_episode_steps=H)

    class Scripted:
        def act(self, state, obs, key, mode):
            return pendulum_policy(obs, key)

    rolled = rollout_jax(env, Scripted(), None, episodes=2, seed=0, mode="explore")
    store = _episodes_to_store(rolled, with_states=True)
    idx = jnp.arange(store.num_steps)
    obs, state = jax.jit(jax.vmap(ExpertResets(env, store, 1.0).expert_state))(idx)
    t = demos.transitions_at(store, idx)
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(t["obs"]))
    assert trees_equal(env_state_to_tree(state), store.extras[ENV_STATE_KEY])
    keys = jax.random.split(jax.random.key(0), len(idx))
    next_obs, _, reward, *_ = jax.jit(jax.vmap(env.step))(keys, state, t["action"])
    np.testing.assert_allclose(np.asarray(next_obs), np.asarray(t["next_obs"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(reward), np.asarray(t["reward"]), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------ probabilities
def test_p0_is_the_envs_own_reset_bit_for_bit_also_through_autoreset(demo_sets):
    env, store = demo_sets["pendulum"]
    keys = jax.random.split(jax.random.key(2), 64)
    mine = jax.jit(jax.vmap(ExpertResets(env, store, 0.0).reset))(keys)
    theirs = jax.jit(jax.vmap(env.reset))(keys)
    assert trees_equal(mine, theirs)

    def rollout(e):
        auto = AutoReset(e)
        obs, state = jax.vmap(auto.reset)(keys)

        def body(carry, k):
            obs, state = carry
            actions = jnp.ones((len(keys), 1))
            obs, state, *_ = jax.vmap(auto.step)(jax.random.split(k, len(keys)), state, actions)
            return (obs, state), obs

        return jax.lax.scan(body, (obs, state), jax.random.split(jax.random.key(3), 2 * H))[1]

    run = jax.jit(rollout, static_argnums=0)
    assert trees_equal(run(ExpertResets(env, store, 0.0)), run(env))


def test_p1_always_starts_from_an_expert_state_also_after_autoreset(demo_sets):
    env, store = demo_sets["cartpole"]
    auto = AutoReset(ExpertResets(env, store, 1.0))
    keys = jax.random.split(jax.random.key(4), 32)

    @jax.jit
    def run():
        obs, state = jax.vmap(auto.reset)(keys)

        def body(carry, k):
            obs, state = carry
            actions = jax.vmap(cartpole_policy)(obs, jax.random.split(k, len(keys)))
            obs, state, _, term, trunc, _ = jax.vmap(auto.step)(
                jax.random.split(k, len(keys)), state, actions
            )
            return (obs, state), (obs, term | trunc)

        return obs, jax.lax.scan(body, (obs, state), jax.random.split(jax.random.key(5), 2 * H))[1]

    first, (obs, done) = run()
    assert (match_step(store, first) >= 0).all()
    starts = np.asarray(obs)[np.asarray(done)]  # the first observation of every auto-reset episode
    assert len(starts) > 32 and (match_step(store, starts) >= 0).all()


def test_p_half_within_a_binomial_bound_and_sweepable_under_vmap(demo_sets):
    env, store = demo_sets["pendulum"]
    n = 4000
    keys = jax.random.split(jax.random.key(6), n)

    @jax.jit
    def expert_fraction(p):  # p traced: one compiled program for every value
        obs, _ = jax.vmap(ExpertResets(env, store, p).reset)(keys)
        stored = demos.transitions_at(store, jnp.arange(store.num_steps))["obs"]
        hit = jnp.any(jnp.all(obs[:, None] == stored[None], -1), -1)
        return jnp.sum(hit)

    k = int(expert_fraction(0.5))
    assert abs(k - n / 2) <= 4.5 * np.sqrt(n / 4), k  # |z| <= 4.5: a false alarm ~ 1 in 150 000
    swept = np.asarray(jax.vmap(expert_fraction)(jnp.asarray([0.0, 0.25, 1.0])))
    assert swept[0] == 0 and swept[2] == n and abs(swept[1] - n / 4) <= 4.5 * np.sqrt(n * 3 / 16), swept
    # and the step is uniform over all demonstration steps: every episode is drawn, means near the middle
    obs, _ = jax.jit(jax.vmap(ExpertResets(env, store, 1.0).reset))(keys)
    steps = match_step(store, obs)
    assert abs(steps.mean() - (store.num_steps - 1) / 2) <= 4.5 * store.num_steps / np.sqrt(12 * n)
    assert len(np.unique(np.asarray(store.step_episode)[steps])) == store.num_episodes


def test_the_clock_keeps_the_experts_elapsed_time_unless_asked_not_to(demo_sets):
    env, store = demo_sets["pendulum"]
    within = np.arange(store.num_steps) - np.asarray(store.episode_starts)[np.asarray(store.step_episode)]
    keys = jax.random.split(jax.random.key(7), 64)
    obs, state = jax.jit(jax.vmap(ExpertResets(env, store, 1.0).reset))(keys)
    np.testing.assert_array_equal(np.asarray(state.elapsed), within[match_step(store, obs)])
    _, fresh = jax.jit(jax.vmap(ExpertResets(env, store, 1.0, keep_elapsed=False).reset))(keys)
    assert not np.asarray(fresh.elapsed).any()
    assert trees_equal(fresh.env_state, state.env_state)


# ------------------------------------------------------------------------------------------ in a training chunk
@struct.dataclass
class ResetSACConfig(sac.SACConfig):
    reset_p: float = param(0.0, low=0.0, high=1.0)
    """expert reset probability (swept: one compiled program for every value)"""


def test_sac_chunk_runs_with_the_wrapper_and_autoresets_through_it(demo_sets):
    env, store = demo_sets["pendulum"]
    config = ResetSACConfig(
        hidden_sizes=(8,), num_envs=4, chunk_steps=2 * H, learning_starts=H, buffer_size=1000, batch_size=32
    )
    # p from each run's traced config: the wrapper is built inside every traced function
    trainer = make_off_policy_trainer(
        "sac", lambda cfg: ExpertResets(env, store, cfg.reset_p), sac.make_sac, config
    )
    result = train(trainer, make_runs(config, sweep={"reset_p": [0.0, 1.0]}), total_steps=1)
    (plain, expert), episodes = result.metrics["episode_length"], result.metrics["episodes"]
    # every episode from expert step t keeps the expert's clock and ends after H - t steps: the auto-reset
    # episodes of the p = 1 run are short, those of the p = 0 run all H long
    assert plain == H and expert < 0.8 * H and episodes[1] > 8, (plain, expert, episodes)
    assert result.compiles == 1
    # evaluation plays the env's own initial states: the p = 1 run evaluates exactly as on the plain env
    state = jax.tree.map(lambda x: x[1], result.state)
    cfg = jax.tree.map(lambda x: x[1], make_runs(config, sweep={"reset_p": [0.0, 1.0]}).config)
    plain_trainer = make_off_policy_trainer("sac", env, sac.make_sac, config)
    got = trainer.evaluate(cfg, state, jax.random.key(3))
    want = plain_trainer.evaluate(cfg, state, jax.random.key(3))
    assert float(got["eval_return"]) == float(want["eval_return"])


def test_evaluation_refuses_expert_resets_under_another_wrapper(demo_sets):
    env, store = demo_sets["pendulum"]
    inside = ClipAction(ExpertResets(env, store, 0.5))
    with pytest.raises(
        ConfigError, match="ExpertResets changes how training episodes start and must be the outer"
    ):
        make_off_policy_trainer("sac", inside, sac.make_sac, sac.SACConfig(hidden_sizes=(8,))).evaluate(
            sac.SACConfig(hidden_sizes=(8,)), None, jax.random.key(0)
        )


# ------------------------------------------------------------------------------------------ wrong input
def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), "0.5", True, [0.2, 2.0]])
def test_p_outside_the_unit_interval_is_one_line(demo_sets, p):
    env, store = demo_sets["pendulum"]
    with pytest.raises(ConfigError) as e:
        ExpertResets(env, store, p)
    assert "[0, 1]" in one_line(e)


def test_demos_without_states_or_of_another_env_are_one_line(demo_sets):
    env, store = demo_sets["pendulum"]
    with pytest.raises(ConfigError) as e:
        ExpertResets(env, store.replace(extras=None), 0.5)
    assert "hold no env states" in one_line(e) and "rlkit demos collect" in one_line(e)
    with pytest.raises(ConfigError) as e:  # cartpole's states, pendulum's env
        ExpertResets(env, demo_sets["cartpole"][1], 0.5)
    assert "do not match the state" in one_line(e) and "x_dot" in one_line(e)
    with pytest.raises(ConfigError) as e:  # the same env without its time limit: another state structure
        ExpertResets(envs.make("pendulum", time_limit=False), store, 0.5)
    assert "missing fields" in one_line(e)
    mujoco_like = {"qpos": np.zeros((store.num_steps, 3)), "qvel": np.zeros((store.num_steps, 3))}
    with pytest.raises(ConfigError) as e:
        ExpertResets(env, store.replace(extras={ENV_STATE_KEY: mujoco_like}), 0.5)
    assert "MuJoCo simulator states" in one_line(e) and "GymnasiumExpertResets" in one_line(e)


def test_a_gymnasium_env_without_set_state_is_one_line(demo_sets):
    import gymnasium

    _, store = demo_sets["pendulum"]
    gym_env = gymnasium.make("CartPole-v1")
    try:
        with pytest.raises(ConfigError) as e:
            GymnasiumExpertResets(gym_env, store, 0.5)
        assert "'CartPole-v1'" in one_line(e) and "set_state" in one_line(e)
    finally:
        gym_env.close()


# ------------------------------------------------------------------------------------------ Gymnasium MuJoCo
@pytest.fixture(scope="module")
def mujoco_demos():
    pytest.importorskip(
        "imageio", reason="Gymnasium's MuJoCo envs: the mujoco extra (in dev)"
    )  # not just mujoco
    from experiments.demos import rollout_gymnasium
    from rlkit.buffers.datasets import ENV_STATE_KEY as KEY

    class Scripted:
        def act(self, state, obs, key, mode):
            return jnp.clip(2.0 * obs[1] + 0.3 * jax.random.normal(key, (1,)), -3.0, 3.0)

    with envs.make("gymnasium:InvertedPendulum-v5") as env:
        rolled = rollout_gymnasium(env, Scripted(), None, episodes=6, seed=0, mode="explore")
    assert set(rolled["states"]) == {"qpos", "qvel", "time", "qacc_warmstart"}
    store = make_demo_store(
        rolled["obs"],
        rolled["lengths"],
        actions=rolled["actions"],
        rewards=rolled["rewards"],
        terminations=rolled["terminations"],
        truncations=rolled["truncations"],
        extras={KEY: rolled["states"]},
    )
    return store


def test_gymnasium_reset_restores_the_stored_simulator_state(mujoco_demos):
    import gymnasium

    store = mujoco_demos
    t = demos.transitions_at(store, jnp.arange(store.num_steps))
    wrapped = GymnasiumExpertResets(gymnasium.make("InvertedPendulum-v5"), store, 1.0)
    for seed in range(12):
        obs, _ = wrapped.reset(seed=seed)
        (i,) = np.flatnonzero(np.all(np.asarray(t["obs"]) == np.float32(obs), axis=1))[:1]
        next_obs, reward, term, _, _ = wrapped.step(np.asarray(t["action"][i]))
        np.testing.assert_array_equal(np.float32(next_obs), np.asarray(t["next_obs"][i]))
        assert np.float32(reward) == np.asarray(t["reward"][i]) and term == bool(t["terminated"][i])
    plain = gymnasium.make("InvertedPendulum-v5")
    none = GymnasiumExpertResets(gymnasium.make("InvertedPendulum-v5"), store, 0.0)
    for seed in range(3):
        np.testing.assert_array_equal(none.reset(seed=seed)[0], plain.reset(seed=seed)[0])


def test_gymnasium_vector_env_autoresets_through_the_hook(mujoco_demos):
    from rlkit.resets import gymnasium_make_env

    store = mujoco_demos
    stored = np.asarray(demos.transitions_at(store, jnp.arange(store.num_steps))["obs"])
    with gymnasium_make_env("gymnasium:InvertedPendulum-v5", store, 1.0)(4) as vec:
        obs = vec.reset(seed=0)
        starts = [obs]
        rng = np.random.default_rng(0)
        for _ in range(60):
            obs, _, term, trunc, _ = vec.step(rng.uniform(-3, 3, (4, 1)).astype(np.float32))
            starts.append(obs[term | trunc])
    starts = np.concatenate(starts)
    assert len(starts) > 8
    assert np.all(np.any(np.all(starts[:, None] == stored[None], -1), -1))
    with pytest.raises(ConfigError) as e:
        gymnasium_make_env("gymnasium:InvertedPendulum-v5", store, 1.2)
    assert "[0, 1]" in one_line(e)
