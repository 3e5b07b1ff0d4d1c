"""Goal-conditioned agents (issue 14, part 3): contrastive RL, single-goal CRL and SAC + HER as compositions of
``GoalConditioned`` × ``data_sources.hindsight_goals`` × the off-policy loop — the relabelled goals and rewards
by hand, the InfoNCE loss by hand, what single-goal collection stores, success at the evaluation goal, learning
on a short corridor, and bad input refused in one line before anything compiles."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents.goals import base, crl, her
from envs.point_maze import PointMaze
from envs.wrappers import TimeLimit
from rlkit import conditioning, data_sources
from rlkit.buffers import make_replay_buffer
from rlkit.configs import ConfigError
from rlkit.registry import get


def _buffer_of_episodes(lengths, capacity=64):
    """One env; step t of episode e stores obs [t, e, 100 + e, 0] (state [t, e], its episode's goal [100 + e, 0])
    and next_obs [t + 1, e, 100 + e, 0]; the last step of each episode is truncated."""
    example = {
        "obs": jnp.zeros(4),
        "action": jnp.zeros(2),
        "reward": jnp.zeros(()),
        "next_obs": jnp.zeros(4),
        "terminated": jnp.zeros((), bool),
        "truncated": jnp.zeros((), bool),
    }
    buffer = make_replay_buffer(example, capacity, 1)
    state = buffer.init()
    for e, length in enumerate(lengths):
        for t in range(length):
            row = {
                "obs": jnp.array([[t, e, 100 + e, 0.0]]),
                "action": jnp.zeros((1, 2)),
                "reward": jnp.full((1,), -7.0),
                "next_obs": jnp.array([[t + 1, e, 100 + e, 0.0]]),
                "terminated": jnp.zeros((1,), bool),
                "truncated": jnp.array([t == length - 1]),
            }
            state = buffer.add(state, row)
    return buffer, state


class _Cfg:
    gamma = 0.9
    relabel_prob = 0.5


def test_hindsight_goals_are_future_achieved_goals_of_the_same_episode_and_rewards_follow_them():
    lengths = (5, 9, 4)
    buffer, state = _buffer_of_episodes(lengths)
    reward = lambda achieved, goal: jnp.all(achieved == goal, axis=-1).astype(jnp.float32) - 1.0  # noqa: E731
    source = data_sources.hindsight_goals(2, (0, 1), relabel="relabel_prob", gamma="gamma", reward=reward)
    sample = source(buffer)
    _, b = jax.jit(lambda k: sample(_Cfg, state, k, 4096, 0))(jax.random.key(0))
    b = jax.tree.map(np.asarray, b)
    t, ep, goal, off = b["obs"][:, 0], b["obs"][:, 1], b["obs"][:, 2:], b["goal_offset"]
    new = off > 0
    # relabelled rows: the goal is the state Δ steps ahead in the same episode, Δ in [1, steps left]
    np.testing.assert_array_equal(goal[new, 0], t[new] + off[new])
    np.testing.assert_array_equal(goal[new, 1], ep[new])
    left = np.asarray(lengths)[ep.astype(int)] - t
    assert np.all(off[new] <= left[new]) and np.any(off[new] == left[new])
    # kept rows: the stored goal; about relabel_prob of the rows are relabelled
    np.testing.assert_array_equal(goal[~new], np.stack([100 + ep[~new], 0 * ep[~new]], -1))
    assert abs(new.mean() - 0.5) < 0.04
    # next_obs carries the same goal; the reward is recomputed for it (0 exactly where s' is the goal: Δ = 1)
    np.testing.assert_array_equal(b["next_obs"][:, 2:], goal)
    np.testing.assert_array_equal(b["reward"], np.where(off == 1, 0.0, -1.0))
    # geometric weights γ^(Δ−1) over the steps left: P(Δ = 1 | ≥ 2 steps left) = (1 − γ) / (1 − γ^left)
    rows = new & (left >= 4) & (ep == 1)
    expect = np.mean((1 - 0.9) / (1 - 0.9 ** left[rows]))
    assert abs(np.mean(off[rows] == 1) - expect) < 0.05


def test_infonce_loss_and_pair_logits_by_hand():
    rng = np.random.default_rng(0)
    sa, g = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)
    for energy in ("dot", "norm"):
        config = crl.CRLConfig(energy=energy)
        by_hand = np.array(
            [
                [(sa[i] @ g[j]) if energy == "dot" else -np.linalg.norm(sa[i] - g[j]) for j in range(5)]
                for i in range(5)
            ]
        )
        logits = np.asarray(crl.pair_logits(config, jnp.asarray(sa), jnp.asarray(g)))
        np.testing.assert_allclose(logits, by_hand, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(
            np.asarray(crl.energy(config, jnp.asarray(sa), jnp.asarray(g))),
            np.diag(by_hand),
            rtol=1e-4,
            atol=1e-3,
        )
    lse = np.log(np.exp(by_hand).sum(1))
    loss, metrics = crl.infonce_loss(jnp.asarray(by_hand), 0.1)
    np.testing.assert_allclose(
        float(loss), -np.mean(np.diag(by_hand) - lse) + 0.1 * np.mean(lse**2), rtol=1e-5
    )
    assert float(metrics["crl/accuracy"]) == np.mean(by_hand.argmax(1) == np.arange(5))


def test_goal_conditioned_reports_success_at_the_episode_goal_and_evaluates_at_eval_goal():
    env = PointMaze.room(4.0, max_step=1.0, max_episode_steps=5)
    wrapped = conditioning.GoalConditioned(
        env, conditioning.fixed((1.0, 0.0)), radius=0.5, eval_prior=conditioning.fixed((-1.0, 0.0))
    )
    obs, s = wrapped.reset(jax.random.key(0))
    np.testing.assert_allclose(obs, [0.0, 0.0, 1.0, 0.0])
    obs, s, _, _, _, info = wrapped.step(jax.random.key(1), s, jnp.array([1.0, 0.0]))
    assert bool(info["success"]) and np.allclose(info["achieved_goal"], [1.0, 0.0])
    obs, s, _, _, _, info = wrapped.step(jax.random.key(2), s, jnp.array([1.0, 0.0]))
    assert not bool(info["success"])
    eval_obs, _ = wrapped.evaluation_env().reset(jax.random.key(0))
    np.testing.assert_allclose(eval_obs, [0.0, 0.0, -1.0, 0.0])


def test_goal_evaluation_strips_what_the_inner_env_strips_for_evaluation():
    """A training-only start distribution inside the goal wrapper (``ExpertResets``' protocol: it offers
    ``evaluation_env``) never reaches evaluation; the goal conditioning stays, at the eval goal."""
    from envs.wrappers import Wrapper
    from rlkit.rollout import evaluation_env

    class TrainingStarts(Wrapper):
        def evaluation_env(self):
            return self.env

    env = envs.make("point-room")
    for eval_prior in (None, conditioning.fixed((-1.0, 0.0))):
        wrapped = conditioning.GoalConditioned(
            TrainingStarts(env), conditioning.fixed((1.0, 0.0)), eval_prior=eval_prior
        )
        played = evaluation_env(wrapped)
        assert isinstance(played, conditioning.GoalConditioned) and played.env is env
        assert played.prior is (eval_prior or wrapped.prior)


def test_a_goal_wrapper_under_another_wrapper_is_refused_naming_the_goals():
    from envs.wrappers import ClipAction
    from rlkit.rollout import evaluation_env

    inside = ClipAction(conditioning.GoalConditioned(envs.make("point-room"), conditioning.fixed((1.0, 0.0))))
    with pytest.raises(
        ConfigError, match="GoalConditioned conditions on goals whose evaluation goal"
    ) as info:
        evaluation_env(inside)
    assert "\n" not in str(info.value)


def test_sample_free_draws_only_free_positions_of_every_cell():
    env = PointMaze.spiral()
    xy = np.asarray(jax.vmap(env.sample_free)(jax.random.split(jax.random.key(0), 4000)))
    assert all(env.is_free(p) for p in xy[:400])
    cells = {tuple(c) for c in np.floor(xy).astype(int)}
    assert len(cells) == len(env.layout.free) == 55


def _corridor(**kw):
    # S at the left end of a 1 x 8 corridor, G at the right end: 7 steps of 1 apart, 12-step episodes; success
    # within 1 of G's centre (sgcrl's distance), so the dead end's corners count
    return TimeLimit(PointMaze(["##########", "#S......G#", "##########"], max_step=1.0, max_episode_steps=12,
                               goal_radius=1.0, **kw))  # fmt: skip


def _small(config_cls, **kw):
    base_kw = dict(num_envs=8, chunk_steps=250, batch_size=128, hidden_sizes=(64, 64), repr_dim=16,
                   learning_starts=2000, buffer_size=40_000, updates_per_step=4)  # fmt: skip
    return config_cls(**(base_kw | kw))


def test_single_goal_collection_stores_the_goal_and_learns_on_hindsight_goals():
    env = _corridor()
    goal = env.unwrapped.layout.goal
    config = _small(crl.SGCRLConfig, goal=goal, chunk_steps=50, learning_starts=100, updates_per_step=1)
    trainer = crl.make_trainer(config, env)
    state = jax.jit(trainer.run_chunk)(config, trainer.init(config, jax.random.key(0)))[0]
    stored = np.asarray(state.buffer_state.data["obs"])[: int(state.buffer_state.count)]
    np.testing.assert_array_equal(stored[..., 2:], np.broadcast_to(np.float32(goal), stored[..., 2:].shape))
    _, batch = base_data_sample(config, env, state)
    assert np.mean(np.any(batch["obs"][:, 2:] != np.float32(goal), axis=-1)) > 0.5  # hindsight goals, not g*


def base_data_sample(config, env, state):
    trainer_buffer = make_replay_buffer(
        jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[2:], x.dtype), state.buffer_state.data),
        config.buffer_size, config.num_envs,
    )  # fmt: skip
    sample = crl.data(config, env.spec)(trainer_buffer)
    out = sample(config, state.buffer_state, jax.random.key(3), 256, 0)
    return out[0], jax.tree.map(np.asarray, out[1])


def _train(agent, config, env, seeds=3, steps=24_000):
    from rlkit.sweeps import make_runs
    from rlkit.training import train

    trainer = get(agent).make_trainer(config, env)
    return trainer, train(
        trainer, make_runs(config, seeds=seeds), total_steps=steps, eval_every=0, console=False
    )


def test_single_goal_crl_collects_ever_more_data_at_its_goal():
    """Single-goal CRL's claim is about collection: aimed at one goal, learning only on hindsight goals, its own
    episodes end up at that goal. The first learning_starts env steps of the run are uniformly random actions:
    they reach within 1 of G (7 cells right of S) in under 5% of their steps; sgcrl's last 8,000 steps must, in
    the median over 3 seeds, in more than 30% (measured: 0.92, 0.88, 0.13 of the steps right of x = 2)."""
    env = _corridor()
    goal = np.float32(env.unwrapped.layout.goal)
    config = _small(crl.SGCRLConfig, goal=tuple(goal))
    _, res = _train("sgcrl", config, env)
    xy = np.asarray(res.state.buffer_state.data["next_obs"])[..., :2]  # [seeds, rows, envs, 2], rows in order
    count = int(np.asarray(res.state.buffer_state.cursor)[0, 1])
    near = np.linalg.norm(xy[:, :count] - goal, axis=-1) <= 1.0
    warmup = config.learning_starts // config.num_envs
    random_share = near[:, :warmup].mean(axis=(1, 2))
    late_share = near[:, -8000 // config.num_envs :].mean(axis=(1, 2))
    assert np.all(random_share < 0.05), random_share
    assert np.median(late_share) > 0.3, late_share


def test_her_learns_to_reach_the_end_of_a_corridor():
    """Random actions reach G in none of the untrained policy's episodes; SAC + HER on the sparse reward (met
    only through relabelling early on), 3 seeds, 24k env steps: the deterministic policy reaches it in every
    seed."""
    env = _corridor()
    goal = env.unwrapped.layout.goal
    config = her.HERConfig(num_envs=8, chunk_steps=250, batch_size=128, hidden_sizes=(64, 64),
                           learning_starts=2000, buffer_size=40_000, updates_per_step=4, goal=goal)  # fmt: skip
    trainer = get("her").make_trainer(config, env)
    untrained = jax.vmap(lambda k: trainer.evaluate(config, trainer.init(config, k), jax.random.key(9)))(
        jax.random.split(jax.random.key(1), 3)
    )
    _, res = _train("her", config, env)
    after = jax.jit(jax.vmap(trainer.evaluate, in_axes=(None, 0, None)))(config, res.state, jax.random.key(9))
    assert float(np.max(untrained["eval_success_any"])) < 0.5
    assert np.all(np.asarray(after["eval_success_any"]) >= 0.9), after["eval_success_any"]


@pytest.mark.parametrize(
    ("agent", "env_id", "changes", "message"),
    [
        ("sgcrl", "point-spiral", {}, r"SGCRLConfig.goal is None: single-goal CRL needs the one goal"),
        ("sgcrl", "point-spiral", dict(goal=(1.0, 2.0, 3.0)),
         r"SGCRLConfig.goal=\(1.0, 2.0, 3.0\): a goal has 2 entries here \(the achieved goal obs\[0, 1\]\)"),
        ("crl", "point-spiral", dict(eval_goal=(1.0,)), r"CRLConfig.eval_goal=\(1.0,\): a goal has 2 entries"),
        ("crl", "point-spiral", dict(goal_dims=(0, 2)), r"CRLConfig.goal_dims=\(0, 2\): indices must be distinct"),
        ("crl", "pendulum", {}, r"CRLConfig.goal=None draws each episode's goal from the env's sample_free"),
        ("crl", "pendulum", dict(goal=(1.0, 0.0, 0.0)), r"goal_radius=None takes the env's goal_radius param"),
        ("crl", "point-spiral", dict(autotune=True, init_alpha=0.0), r"autotune learns log α and needs init_alpha"),
        ("her", "push2d", dict(goal=(0.0,) * 4), r"HER replaces the env's reward .* push2d has 4 reward terms"),
    ],
)  # fmt: skip
def test_goal_agents_refuse_bad_input_in_one_line_before_compiling(agent, env_id, changes, message):
    entry = get(agent)
    with pytest.raises(ConfigError, match=message) as info:
        entry.make_trainer(entry.config_cls(**changes), envs.make(env_id))
    assert "\n" not in str(info.value)


def test_goal_size_and_the_registry_wrap_env_agree_with_the_trainer_spec():
    env = envs.make("point-spiral")
    config = crl.SGCRLConfig(goal=(5.5, -4.5))
    wrapped = get("sgcrl").wrap_env(config, env)
    assert wrapped.spec == crl.make_trainer(config, env).spec
    assert base.goal_size(config, wrapped.spec) == 2 and isinstance(wrapped, conditioning.GoalConditioned)
    assert her.HERConfig().relabel_prob == 0.8


def test_a_single_goal_agent_trains_from_the_cli_and_evaluates_at_its_goal_from_its_file(tmp_path):
    from experiments import cli
    from experiments.train import main

    small = "--hidden-sizes 8 --repr-dim 4 --batch-size 16 --learning-starts 100 --chunk-steps 100 --buffer-size 500"
    main(["--agent", "sgcrl", "--env", "point-spiral", "--goal", "5.5", "-4.5", "--seeds", "1",
          "--total-steps", "200", "--log-dir", str(tmp_path), *small.split()])  # fmt: skip
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (
        summary["metric"] == "eval_success_any"
    )  # a goal agent is summarized by its success, not its return
    result = cli.evaluate(cli.EvalArgs(str(tmp_path / "agent.rlkit"), episodes=2))
    # the file's agent acts on concat(xy, goal) and is evaluated at its goal: success keys, not a shape error
    assert {"eval_success", "eval_success_any"} <= set(result) and result["eval_success_any"] in (
        0.0,
        0.5,
        1.0,
    )
