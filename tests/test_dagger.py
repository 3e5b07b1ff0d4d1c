"""DAgger as a composition over the off-policy loop: the dataset is exactly the visited states (never overwritten,
sampled uniformly over all rounds), β per round and per step (round 0 is the expert exactly; evaluation never sees
it), labels are the expert's, the learner beats its untrained self (one-sided permutation test), and bad input is
one line — in Python and through ``rlkit train --expert`` (on device, resumed, and on a Gymnasium env)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents.imitation import bc, dagger
from experiments.train import main
from rlkit import registry
from rlkit.agent import Agent
from rlkit.buffers import make_replay_buffer
from rlkit.configs import ConfigError
from rlkit.evaluation import evaluate_policy
from rlkit.export import export_agent, load_agent
from rlkit.off_policy import example_transition
from rlkit.sweeps import make_runs
from rlkit.training import check_finite, train
from tests.helpers.cli_errors import one_error_line
from tests.helpers.experts import cartpole_expert, permutation_p


def pendulum_expert(obs):
    return jnp.clip(-(10.0 * jnp.arctan2(obs[1], obs[0]) + 2.0 * obs[2]), -2.0, 2.0)[None]


def smooth_expert(obs):
    return jnp.tanh(obs[0] - obs[1] + 0.2 * obs[2])[None]  # inside the box: quick for BC to fit


def scripted(policy):
    return Agent("scripted", None, None, lambda state, obs, key, mode="deterministic": policy(obs), None), ()


def small(**kw):
    base = dict(hidden_sizes=(16,), num_envs=4, chunk_steps=50, train_frequency=50, updates_per_step=10)
    return dagger.DAggerConfig(**(base | dict(buffer_size=2000, batch_size=64) | kw))


def chunks(config, env, expert, k, seed=0):
    """``[state after init, after chunk 1, …, after chunk k]`` and each chunk's metrics, one run, unvmapped."""
    trainer = dagger.make_trainer(config, env, expert=expert)
    run = jax.jit(trainer.run_chunk)
    states, metrics = [jax.jit(trainer.init)(config, jax.random.key(seed))], []
    for _ in range(k):
        state, m = run(config, states[-1])
        states.append(state)
        metrics.append(jax.device_get(m))
    return states, metrics


def stored(state):
    """The buffer's written rows, ``[rows, envs, ...]`` per field (the loop never wraps here)."""
    n = int(state.buffer_state.count)
    return jax.device_get(jax.tree.map(lambda x: x[:n], state.buffer_state.data)), n


#: pendulum, 4 envs × 70-step rounds, one round per chunk, β = 1, 0.5, 0 in rounds 0, 1, 2; the buffer holds exactly
#: three rounds, so the fourth chunk is the first to overwrite
FILLED = small(chunk_steps=70, train_frequency=70, rampdown_rounds=2, buffer_size=3 * 70 * 4)


@pytest.fixture(scope="module")
def filled():
    return chunks(FILLED, envs.make("pendulum"), scripted(pendulum_expert), 4)


def test_the_dataset_is_exactly_the_visited_states_sampled_uniformly_over_all_rounds(filled):
    env, k, config = envs.make("pendulum"), 3, FILLED
    states = filled[0][: k + 1]
    for c, state in enumerate(states):
        data, rows = stored(state)
        assert rows * config.num_envs == c * config.train_frequency * config.num_envs == int(state.env_steps)
        assert int(state.agent_state.updates) == c * config.updates_per_step
        assert int(dagger.rounds(config, state.agent_state)) == c
    data, rows = stored(states[-1])
    # one unbroken chain of visited states per env: the reset state, each next state, the current state
    np.testing.assert_array_equal(data["obs"][0], np.asarray(states[0].obs))
    done = data["terminated"] | data["truncated"]
    follows = data["obs"][1:] == data["next_obs"][:-1]
    assert np.all(follows.all(-1) | done[:-1]) and done.sum() == config.num_envs, (
        done.sum()
    )  # 200-step episodes
    assert not np.any(follows.all(-1) & done[:-1])  # after an episode's end: a fresh reset state
    np.testing.assert_array_equal(np.asarray(states[-1].obs), data["next_obs"][-1])

    buffer = make_replay_buffer(example_transition(env.spec), config.buffer_size, config.num_envs)
    sample = jax.jit(lambda key: dagger.dataset()(buffer)(config, states[-1].buffer_state, key, 4096, 840)[1])
    batch = jax.device_get(sample(jax.random.key(1)))
    flat = data["obs"].reshape(-1, 3)
    match = np.all(batch["obs"][:, None] == flat[None], -1)  # [B, rows·envs]
    assert match.any(1).all()  # every sampled state was visited
    first_round = match[:, : rows // k * config.num_envs].any(1).mean()  # rows are time-major
    assert abs(first_round - 1 / k) < 0.04, first_round  # uniform over all rounds (binomial sd 0.007)
    assert not batch["dataset_overwritten"]


def test_beta_schedules():
    linear, exponential = (
        dagger.DAggerConfig(),
        dagger.DAggerConfig(beta_schedule="exponential", beta_decay=0.7),
    )
    i = np.arange(21)
    np.testing.assert_allclose(jax.vmap(lambda r: dagger.beta(linear, r))(i), np.clip((15 - i) / 15, 0, 1))
    np.testing.assert_allclose(jax.vmap(lambda r: dagger.beta(exponential, r))(i), 0.7**i, rtol=1e-5)
    assert float(dagger.beta(linear, 0)) == float(dagger.beta(exponential, 0)) == 1.0


def test_round_zero_executes_the_expert_then_the_mixture_and_deterministic_is_the_learner_alone(filled):
    env, (states, metrics) = envs.make("pendulum"), filled
    data, _ = stored(states[3])
    expert = np.asarray(jax.vmap(jax.vmap(pendulum_expert))(data["obs"]))[..., 0].reshape(
        3, -1
    )  # 280 per round
    is_expert = (
        np.abs(data["action"][..., 0].reshape(3, -1) - expert) < 1e-5
    )  # compiled apart: float rounding
    interior = (
        np.abs(expert) < 2.0
    )  # a saturated learner sample can hit the expert's clipped edge action exactly
    assert is_expert[0].all(), is_expert[0].mean()
    assert 0.38 < is_expert[1][interior[1]].mean() < 0.62 and not is_expert[2][interior[2]].any()
    np.testing.assert_allclose([m["beta"] for m in metrics[:3]], [1.0, 0.5, 0.0])

    agent = dagger.make_dagger(FILLED, env.spec, expert=scripted(pendulum_expert))
    learner, state = bc.make_bc(FILLED, env.spec), states[0].agent_state  # round 0: β = 1
    obs = jnp.asarray(data["obs"].reshape(-1, 3))
    keys = jax.random.split(jax.random.key(2), len(obs))
    act = jax.vmap(agent.act, in_axes=(None, 0, 0, None))
    deterministic, explore = act(state, obs, keys, "deterministic"), act(state, obs, keys, "explore")
    alone = jax.vmap(lambda o: learner.act(state.bc, o, None, "deterministic"))(obs)
    np.testing.assert_array_equal(deterministic, alone)
    np.testing.assert_allclose(explore, jax.vmap(pendulum_expert)(obs), atol=1e-5)
    assert not np.any(np.abs(np.asarray(deterministic) - np.asarray(explore)) < 1e-5)


def test_updates_fit_the_experts_labels_not_the_stored_actions():
    env = envs.make("pendulum")
    config = small(hidden_sizes=(32,), learning_rate=3e-3)
    agent = dagger.make_dagger(config, env.spec, expert=scripted(smooth_expert))
    key = jax.random.key(0)
    obs = jax.random.uniform(key, (256, 3), minval=-1.0, maxval=1.0) * jnp.array([1.0, 1.0, 8.0])
    expert = jax.vmap(smooth_expert)(obs)
    batch = {"obs": obs, "action": -expert}  # the executed actions, wrong on purpose

    def steps(state, k):
        return agent.update(state, batch, k)[0], None

    state = jax.jit(lambda: jax.lax.scan(steps, agent.init(key), jax.random.split(key, 400))[0])()
    assert int(state.updates) == 400
    error = float(
        jnp.mean(jnp.abs(jax.vmap(lambda o: agent.act(state, o, None, "deterministic"))(obs) - expert))
    )
    assert error < 0.1, error  # the stored actions are 2·|expert| away


def test_the_learner_improves_on_its_untrained_self():
    env = envs.make("cartpole")
    config = small(hidden_sizes=(32, 32), chunk_steps=100, train_frequency=100, updates_per_step=100)
    config = config.replace(learning_rate=3e-3, rampdown_rounds=3)
    result = train(
        dagger.make_trainer(config, env, expert=scripted(cartpole_expert)),
        make_runs(config, seeds=1),
        total_steps=1200,
        console=False,
    )
    agent = dagger.make_dagger(config, env.spec)  # as loaded from a file: no expert
    trained = jax.tree.map(lambda x: x[0], result.state.agent_state)

    @jax.jit
    def returns(state):  # 20 episodes' returns, the same 20 initial states for both
        one = lambda k: evaluate_policy(env, agent, state, k, num_episodes=1)["eval_return"]  # noqa: E731
        return jax.vmap(one)(jax.random.split(jax.random.key(5), 20))

    before, after = np.asarray(returns(agent.init(jax.random.key(0)))), np.asarray(returns(trained))
    p = permutation_p(after, before)
    # measured: 20 episodes of 500 after 3 rounds; ~15 before
    assert p < 0.05 and after.mean() - before.mean() > 200, (p, after, before)


def test_bad_input_is_one_line_before_compiling():
    cartpole, pendulum = envs.make("cartpole"), envs.make("pendulum")
    sac = registry.get("sac")  # an expert for another env: its networks fail on cartpole's observations
    sac_agent = sac.make_agent(sac.config_cls(hidden_sizes=(8,)), pendulum.spec)
    sac_expert = (
        sac_agent,
        jax.eval_shape(sac_agent.init, jax.random.key(0)),
    )  # shapes are all the check needs
    cases = [
        (
            small(),
            cartpole,
            sac_expert,
            r"expert \('sac' agent\) cannot act on cartpole's observations \(4,\)",
        ),
        (
            small(),
            pendulum,
            scripted(lambda o: (o[0] > 0).astype(jnp.int32)),
            r"expert \('scripted' agent\) gives discrete actions",
        ),
        (small(), cartpole, scripted(pendulum_expert), r"gives continuous actions float32\[1\].*Discrete"),
        (small(beta_decay=1.5), cartpole, None, r"beta_decay = 1.5 is out of range"),
        (small(rampdown_rounds=0), cartpole, None, r"rampdown_rounds = 0 is out of range"),
        (small(sampling="rr"), cartpole, None, r"sampling = 'rr'.*use 'uniform'"),
        (small(chunk_updates=5), cartpole, None, r"chunk_updates = 5 is offline BC's"),
        (small(buffer_size=100), cartpole, None, r"buffer_size = 100.*at least one chunk .* = 200"),
        (small(buffer_size=2002), cartpole, None, r"buffer_size = 2002.*multiple of num_envs = 4"),
    ]
    for config, env, expert, match in cases:
        with pytest.raises(ConfigError, match=match):
            dagger.make_trainer(config, env, expert=expert or scripted(cartpole_expert))


def test_a_full_buffer_stops_the_run_instead_of_overwriting(filled):
    states, metrics = filled
    assert [float(m["nonfinite_dataset_overwritten"]) for m in metrics] == [0, 0, 0, 1]
    for a, b in zip(jax.tree.leaves(states[3].agent_state.bc), jax.tree.leaves(states[4].agent_state.bc)):
        np.testing.assert_array_equal(a, b)  # no update learnt from the overwritten buffer
    with pytest.raises(FloatingPointError, match="nonfinite_dataset_overwritten"):
        check_finite("dagger", 4, jax.tree.map(lambda x: np.asarray(x)[None], metrics[3]), ["seed_0"])
    # on device the run is refused before compiling: 4 chunks would overwrite a 3-round buffer
    trainer = dagger.make_trainer(FILLED, envs.make("pendulum"), expert=scripted(pendulum_expert))
    with pytest.raises(
        ConfigError, match=r"total_steps = 1000 .* more than this trainer can take, 840 env steps"
    ):
        train(trainer, make_runs(FILLED, seeds=1), total_steps=1000, console=False)


@pytest.fixture
def cli_dagger(tmp_path):
    """Two cartpole expert files."""
    config, spec = bc.BCConfig(hidden_sizes=(8,)), envs.make("cartpole").spec
    files = [tmp_path / f"expert_{i}.rlkit" for i in range(2)]
    for i, path in enumerate(files):
        export_agent(path, "bc", config, bc.make_bc(config, spec).init(jax.random.key(i)), spec)
    return files


TINY = ["--hidden-sizes", "8", "--num-envs", "2", "--chunk-steps", "50", "--train-frequency", "50"]
TINY += ["--updates-per-step", "5", "--buffer-size", "400", "--batch-size", "16", "--seeds", "1"]
TINY += ["--total-steps", "200", "--eval-every", "0"]


def test_rlkit_train_expert_flag(cli_dagger, tmp_path, capsys):
    first, second = cli_dagger
    run = ["train", "--agent", "dagger", "--env", "cartpole", *TINY, "--log-dir", str(tmp_path / "run")]
    sac = ["train", "--agent", "sac", "--total-steps", "1", "--log-dir", str(tmp_path / "sac")]
    line = one_error_line(capsys, [*sac, "--expert", str(first)])
    assert line.endswith(
        f"--expert {first}: agent 'sac' does not query an expert (agents that do: ['dagger'])"
    )
    assert "give --expert PATH" in one_error_line(capsys, run)
    line = one_error_line(capsys, [*run, "--env", "pendulum", "--expert", str(first)])
    assert "--expert: " in line and "does not fit pendulum" in line, line
    assert "does not exist" in one_error_line(capsys, [*run, "--expert", str(tmp_path / "nope.rlkit")])

    main([*run[1:], "--expert", str(first), "--learning-starts", "150"])  # 2 chunks of 2 envs × 50 steps
    agent, state = load_agent(tmp_path / "run" / "agent.rlkit", envs.make("cartpole").spec)  # no expert
    assert agent.name == "dagger" and int(state.updates) == 5  # the warm-up chunk's updates were discarded
    first.write_bytes(second.read_bytes())  # another expert under the same path
    line = one_error_line(capsys, [*run, "--expert", str(first), "--learning-starts", "150", "--resume"])
    assert "inputs.expert.sha256" in line, line


def test_rlkit_train_dagger_on_a_gymnasium_env(cli_dagger, tmp_path):
    log_dir = tmp_path / "gym"
    main(["--agent", "dagger", "--env", "gymnasium:CartPole-v1", *TINY, "--expert", str(cli_dagger[0]),
          "--log-dir", str(log_dir)])  # fmt: skip
    _, state = load_agent(log_dir / "agent.rlkit", envs.make("cartpole").spec)
    assert int(state.updates) == 2 * 5  # two rounds learnt through the host loop
