"""``rlkit demos collect`` / ``info`` and ``load_demos`` / ``check_demos_match``: what is collected is what the env
did (stored states replay to the stored next observations and rewards), the three on-disk forms load back
identical, collection is reproducible from its seed, and every wrong input is one line (exit status 2) with
nothing a user saved overwritten."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import jax
import numpy as np
import pytest

import envs
from agents import sac
from agents.ppo import PPOConfig, make_ppo
from envs.spaces import Box, Discrete
from experiments import cli
from experiments import demos as demos_cli
from experiments.demos import CollectArgs, InfoArgs, collect, info
from rlkit.buffers import demos, load_npz, make_demo_store
from rlkit.buffers.datasets import (
    ENV_STATE_KEY,
    DatasetError,
    check_demos_match,
    env_state_from_tree,
    load_demos,
)
from rlkit.export import export_agent, load_agent
from tests.helpers import cli_errors

MINARI_PATH = os.environ.get("MINARI_DATASETS_PATH")  # collect and load_demos set it only for their calls
FIELDS = ("observations", "actions", "rewards", "terminations", "truncations", "episode_lengths")


def tiny_agent(path, spec) -> str:
    """An untrained SAC agent with 8 hidden units: enough to test formats, nothing to learn."""
    config = sac.SACConfig(hidden_sizes=(8,))
    return export_agent(path, "sac", config, sac.make_sac(config, spec).init(jax.random.key(0)), spec)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("demos")


@pytest.fixture(scope="module")
def agent_file(work) -> str:
    return tiny_agent(work / "pendulum.rlkit", envs.make("pendulum").spec)


@pytest.fixture(scope="module")
def collected(work, agent_file):
    out = work / "pendulum"
    summary = collect(CollectArgs(agent_file=agent_file, out=str(out), episodes=3, seed=3))
    return out, summary


def assert_same(a, b, fields=FIELDS):
    for name in fields:
        x, y = getattr(a, name), getattr(b, name)
        jax.tree.map(
            lambda u, v, n=name: np.testing.assert_array_equal(np.asarray(u), np.asarray(v), n), x, y
        )


def one_error_line(capsys, argv: list[str]) -> str:
    return cli_errors.one_error_line(capsys, argv, prefix="rlkit demos: error: ")


# ------------------------------------------------------------------------------------------ collect (JAX env)
def test_the_three_forms_load_back_the_same_episodes(collected):
    out, summary = collected
    assert {p.name for p in out.iterdir()} == {"demos.npz", "demos.json", "minari"}
    from_dir, from_npz, from_minari = (
        load_demos(out),
        load_demos(out / "demos.npz"),
        load_demos(out / "minari"),
    )
    (dataset_dir,) = [p.parent for p in (out / "minari").rglob("metadata.json") if p.parent.name == "data"]
    from_dataset_dir = load_demos(dataset_dir)
    assert from_dir.num_episodes == 3 and from_dir.num_steps == 600
    assert np.asarray(from_dir.episode_lengths).tolist() == [200, 200, 200]  # pendulum's time limit
    for other in (from_npz, from_minari, from_dataset_dir):
        assert_same(from_dir, other)
    assert ENV_STATE_KEY in from_dir.extras and from_minari.extras is None  # Minari has no room for states
    assert os.environ.get("MINARI_DATASETS_PATH") == MINARI_PATH
    # T + 1 observations per episode, the last step of each truncated (pendulum never terminates)
    assert np.asarray(from_dir.observations).shape == (603, 3)
    for e in range(3):
        ep = demos.episode(from_dir, e)
        assert ep["observations"].shape == (201, 3) and ep["actions"].shape == (200, 1)
        assert ep["truncations"][-1] and not ep["truncations"][:-1].any() and not ep["terminations"].any()
    meta = json.loads((out / "demos.json").read_text())
    returns = [float(np.sum(demos.episode(from_dir, e)["rewards"], dtype=np.float64)) for e in range(3)]
    np.testing.assert_allclose(meta["returns"], returns, rtol=1e-6)
    np.testing.assert_allclose(meta["return_mean"], np.mean(returns), rtol=1e-6)
    np.testing.assert_allclose(meta["return_std"], np.std(returns), rtol=1e-6)
    assert meta["env"] == "pendulum" and meta["agent"] == "sac" and meta["seed"] == 3
    assert meta["episodes"] == 3 and meta["steps"] == 600 and meta["env_states"] is True
    assert meta["observation_shape"] == [3] and meta["action_shape"] == [1]
    assert summary["returns"] == meta["returns"]


def test_stored_env_states_replay_to_the_stored_next_observations_and_rewards(collected):
    store = load_demos(collected[0])
    env = envs.make("pendulum")
    template = env.reset(jax.random.key(0))[1]
    states = env_state_from_tree(
        store.extras[ENV_STATE_KEY], template
    )  # every step: the state before action t
    steps = np.arange(store.num_steps)
    t = demos.transitions_at(store, jax.numpy.asarray(steps))
    next_obs, next_states, reward, term, trunc, _ = jax.vmap(env.step)(
        jax.random.split(jax.random.key(1), len(steps)), states, t["action"]
    )
    np.testing.assert_allclose(
        np.asarray(next_obs), np.asarray(t["next_obs"]), atol=1e-5
    )  # XLA fusion differs
    np.testing.assert_allclose(np.asarray(reward), np.asarray(t["reward"]), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(trunc), np.asarray(t["truncated"]))
    # and the observation of each stored state is the stored observation (the first of each episode too)
    theta, theta_dot = np.asarray(states.env_state.theta), np.asarray(states.env_state.theta_dot)
    np.testing.assert_allclose(np.stack([np.cos(theta), np.sin(theta), theta_dot], 1), t["obs"], atol=1e-6)
    within = steps - np.asarray(store.episode_starts)[np.asarray(store.step_episode)]
    np.testing.assert_array_equal(np.asarray(states.elapsed), within)  # the time limit's clock goes with it
    # the actions are the agent's deterministic actions on those observations
    agent, agent_state = load_agent(collected[1]["agent_file"], env.spec)
    acted = jax.vmap(lambda o: agent.act(agent_state, o, jax.random.key(0), "deterministic"))(t["obs"])
    np.testing.assert_allclose(np.asarray(acted), np.asarray(t["action"]), atol=1e-5)


def test_episodes_end_where_the_env_ends_them(work, capsys):
    """CartPole falls early: only each episode's own steps are kept, its last one terminated; Discrete actions
    are stored as integer indices of shape [] per step."""
    spec = envs.make("cartpole").spec
    config = PPOConfig(hidden_sizes=(8,))
    agent = export_agent(
        work / "cartpole.rlkit", "ppo", config, make_ppo(config, spec).init(jax.random.key(0)), spec
    )
    out = work / "cartpole"
    collect(CollectArgs(agent_file=agent, out=str(out), episodes=4, mode="explore"))
    store = load_demos(out)
    lengths = np.asarray(store.episode_lengths)
    assert (lengths < 500).all() and len(set(lengths.tolist())) > 1, lengths
    assert np.asarray(store.observations).shape == (store.num_steps + 4, 4)
    for e in range(4):
        ep = demos.episode(store, e)
        assert ep["terminations"][-1] and not ep["terminations"][:-1].any() and not ep["truncations"].any()
    actions = np.asarray(store.actions)
    assert actions.dtype == np.int32 and actions.shape == (store.num_steps,) and set(actions) <= {0, 1}
    check_demos_match(store, spec)
    assert_same(store, load_demos(out / "minari"))
    env = envs.make("cartpole")
    states = env_state_from_tree(store.extras[ENV_STATE_KEY], env.reset(jax.random.key(0))[1])
    t = demos.transitions_at(store, jax.numpy.arange(store.num_steps))
    next_obs, _, reward, term, _, _ = jax.vmap(env.step)(
        jax.random.split(jax.random.key(1), store.num_steps), states, t["action"]
    )
    np.testing.assert_allclose(np.asarray(next_obs), np.asarray(t["next_obs"]), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(term), np.asarray(t["terminated"]))


def test_same_seed_same_data_and_force_replaces_an_earlier_collect(work, collected, agent_file, monkeypatch):
    out, _ = collected
    again = collect(CollectArgs(agent_file=agent_file, out=str(work / "again"), episodes=3, seed=3))
    a, b = load_npz(out / "demos.npz"), load_npz(work / "again" / "demos.npz")
    assert_same(a, b, (*FIELDS, "extras"))  # bit for bit
    with monkeypatch.context() as m:  # rolled out 2 + 2 (1 padding) episodes at a time: the same episodes,
        m.setattr(demos_cli, "MAX_BATCH", 2)  # up to float rounding (another batch shape, another program)
        collect(CollectArgs(agent_file=agent_file, out=str(work / "batched"), episodes=3, seed=3))
    batched = load_npz(work / "batched" / "demos.npz")
    np.testing.assert_array_equal(batched.episode_lengths, a.episode_lengths)
    for name in ("observations", "actions", "rewards"):
        np.testing.assert_allclose(getattr(batched, name), getattr(a, name), atol=1e-3, err_msg=name)
    assert again["returns"] == json.loads((out / "demos.json").read_text())["returns"]
    copy = work / "copy"
    shutil.copytree(out, copy)
    explore = collect(
        CollectArgs(agent_file=agent_file, out=str(copy), episodes=2, seed=4, mode="explore", force=True)
    )
    replaced = load_demos(copy)
    assert replaced.num_episodes == 2 and json.loads((copy / "demos.json").read_text())["mode"] == "explore"
    assert explore["episodes"] == 2 and explore["seed"] == 4
    first_obs = lambda s: np.asarray(demos.episode(s, 0)["observations"][0])  # noqa: E731
    assert not np.array_equal(first_obs(replaced), first_obs(a))  # another seed: other resets
    # explore: sampled actions, not the deterministic ones on the same observations
    agent, agent_state = load_agent(agent_file, envs.make("pendulum").spec)
    t = demos.transitions_at(replaced, jax.numpy.arange(replaced.num_steps))
    mean = jax.vmap(lambda o: agent.act(agent_state, o, jax.random.key(0), "deterministic"))(t["obs"])
    assert np.abs(np.asarray(mean) - np.asarray(t["action"])).mean() > 1e-2
    assert [p.name for p in work.iterdir() if p.name.startswith(".copy")] == []  # no temp dirs left over
    # a collect that fails while writing leaves the earlier output as it was
    before = {p.relative_to(copy): p.read_bytes() for p in copy.rglob("*") if p.is_file()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("rlkit.buffers.save_minari", broken)
    with pytest.raises(OSError, match="disk full"):
        collect(CollectArgs(agent_file=agent_file, out=str(copy), episodes=1, force=True))
    assert {p.relative_to(copy): p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before
    assert [p.name for p in work.iterdir() if p.name.startswith(".copy")] == []


# ------------------------------------------------------------------------------------------ collect (Gymnasium)
def test_collect_on_a_gymnasium_env(work, capsys):
    with envs.make("gymnasium:Pendulum-v1") as env:
        agent = tiny_agent(work / "gym.rlkit", env.spec)
    out = work / "gym"
    cli.main(["demos", "collect", "--agent-file", agent, "--episodes", "2", "--out", str(out), "--seed", "5"])
    line = capsys.readouterr().out.strip()
    assert line.startswith("collected 2 episodes (400 steps)") and "gymnasium:Pendulum-v1" in line, line
    store = load_demos(out)
    assert store.extras is None and store.num_episodes == 2
    assert_same(store, load_demos(out / "minari"))
    meta = json.loads((out / "demos.json").read_text())
    assert meta["env"] == "gymnasium:Pendulum-v1" and meta["env_states"] is False
    # replaying the stored actions in a fresh Gymnasium env from the same reset seed gives the stored episode
    import gymnasium

    for e in range(2):
        ep = demos.episode(store, e)
        gym_env = gymnasium.make("Pendulum-v1")
        obs = [gym_env.reset(seed=5 + e)[0]]
        rewards = []
        for action in ep["actions"]:
            o, r, *_ = gym_env.step(action)
            obs.append(o)
            rewards.append(r)
        np.testing.assert_allclose(ep["observations"], np.stack(obs), atol=1e-5)
        np.testing.assert_allclose(ep["rewards"], rewards, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(meta["returns"][e], np.sum(ep["rewards"], dtype=np.float64), rtol=1e-6)


# ------------------------------------------------------------------------------------------ info
def test_info_prints_what_is_stored(collected, capsys):
    out, _ = collected
    capsys.readouterr()
    cli.main(["demos", "info", str(out)])
    text = capsys.readouterr().out
    store = load_demos(out)
    returns = [float(np.sum(demos.episode(store, e)["rewards"], dtype=np.float64)) for e in range(3)]
    for expected in (
        "episodes      3",
        "steps         600 (episode lengths 200 … 200",
        "observations  float32 (3,)",
        "actions       float32 (1,)",
        "rewards       float32 ()",
        "env states    stored",
        f"returns       {np.mean(returns):.4g} ± {np.std(returns):.3g} (min {min(returns):.4g}, max {max(returns):.4g})",
        "env                pendulum",
        "agent              sac",
        "mode               deterministic",
    ):
        assert expected in text, (expected, text)
    summary = info(InfoArgs(str(out / "minari")))
    assert summary["has_env_states"] is False and summary["episodes"] == 3
    assert summary["observation_shape"] == [3] and summary["action_dtype"] == "float32"
    assert summary["metadata"]["env"] == "pendulum"
    text = capsys.readouterr().out
    assert "env states    not stored" in text and "a Minari dataset" in text


def test_info_without_actions_or_rewards(work, capsys):
    store = make_demo_store(np.zeros((4, 3), np.float32), np.array([3]))
    from rlkit.buffers import save_npz

    save_npz(store, work / "obs_only.npz")
    summary = info(InfoArgs(str(work / "obs_only.npz")))
    text = capsys.readouterr().out
    assert "actions       not stored" in text and "returns       n/a" in text
    assert summary["has_actions"] is False and summary["metadata"] is None


# ------------------------------------------------------------------------------------------ wrong input
def test_missing_and_corrupt_paths_are_one_line(work, collected, capsys):
    missing = work / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere does not exist; demonstrations are"):
        load_demos(missing)
    line = one_error_line(capsys, ["demos", "info", str(missing)])
    assert str(missing) in line and ".npz" in line and "Minari" in line, line
    broken = work / "broken.npz"
    data = (collected[0] / "demos.npz").read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated or corrupted"):
        load_demos(broken)
    assert "truncated or corrupted" in one_error_line(capsys, ["demos", "info", str(broken)])
    (work / "empty").mkdir()
    assert "holds no demonstrations" in one_error_line(capsys, ["demos", "info", str(work / "empty")])
    (work / "notes.txt").write_text("hello")
    assert "is not a .npz file" in one_error_line(capsys, ["demos", "info", str(work / "notes.txt")])


def test_check_demos_match(collected):
    store = load_demos(collected[0])
    pendulum = envs.make("pendulum").spec
    check_demos_match(store, pendulum)  # fits: no error
    cartpole = envs.make("cartpole").spec
    with pytest.raises(DatasetError) as err:
        check_demos_match(store, cartpole, source="demos/p")
    message = str(err.value)
    assert "(3,)" in message and "(4,)" in message and "cartpole" in message and "\n" not in message
    wide = pendulum.replace(action_space=Box.uniform(-1, 1, (2,)))
    with pytest.raises(
        DatasetError, match=r"action shape \(1,\) does not match pendulum's action shape \(2,\)"
    ):
        check_demos_match(store, wide)
    no_actions = dataclasses.replace(store, actions=None)
    with pytest.raises(DatasetError, match="no actions"):
        check_demos_match(no_actions, pendulum, need_actions=True)
    check_demos_match(no_actions, pendulum, need_actions=False)  # imitation from observation: fine
    # discrete actions: integer indices of shape [] per step, inside [0, n)
    obs = np.zeros((5, 4), np.float32)
    check_demos_match(make_demo_store(obs, np.array([4]), actions=np.array([0, 1, 1, 0], np.int32)), cartpole)
    for actions, expected in (
        (np.zeros((4, 1), np.int32), r"action shape \(1,\)"),
        (np.zeros(4, np.float32), "dtype float32"),
        (np.array([0, 1, 2, 0], np.int32), r"outside \[0, 2\)"),
    ):
        with pytest.raises(DatasetError, match=expected):
            check_demos_match(make_demo_store(obs, np.array([4]), actions=actions), cartpole)
    assert isinstance(cartpole.action_space, Discrete)


def test_bad_collect_arguments_are_one_line_and_overwrite_nothing(work, agent_file, capsys):
    base = ["demos", "collect", "--agent-file", agent_file]
    kept = work / "kept"
    kept.mkdir()
    (kept / "mine.txt").write_text("do not lose me")
    line = one_error_line(capsys, [*base, "--out", str(kept)])
    assert "exists and is not empty" in line and "--force" in line, line
    line = one_error_line(capsys, [*base, "--out", str(kept), "--force"])  # not an earlier collect's output
    assert "not the output of rlkit demos collect" in line, line
    assert [p.name for p in kept.iterdir()] == ["mine.txt"] and (
        kept / "mine.txt"
    ).read_text() == "do not lose me"
    new = str(work / "new")
    assert "--episodes 0 is out of range" in one_error_line(capsys, [*base, "--out", new, "--episodes", "0"])
    line = one_error_line(capsys, ["demos", "collect", "--agent-file", str(work / "no.rlkit"), "--out", new])
    assert "no.rlkit does not exist" in line, line
    (work / "fake.rlkit").write_text("not an agent")
    line = one_error_line(
        capsys, ["demos", "collect", "--agent-file", str(work / "fake.rlkit"), "--out", new]
    )
    assert "is not an rlkit agent file" in line, line
    line = one_error_line(capsys, [*base, "--out", new, "--env", "cartpole"])
    assert "does not fit cartpole" in line and "(4,)" in line and "(3,)" in line, line
    assert "Did you mean 'pendulum'" in one_error_line(capsys, [*base, "--out", new, "--env", "pendulm"])
    assert "--mode 'x' is not allowed" in one_error_line(capsys, [*base, "--out", new, "--mode", "x"])
    assert "--episodes expects an integer" in one_error_line(capsys, [*base, "--out", new, "--episodes", "a"])
    assert "--out" in one_error_line(capsys, base)  # required
    assert "did you mean 'info'" in one_error_line(capsys, ["demos", "inf"])
    assert "missing command" in one_error_line(capsys, ["demos"])
    assert not (work / "new").exists()
