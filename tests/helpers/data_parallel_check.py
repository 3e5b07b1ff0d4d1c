"""Run with XLA_FLAGS=--xla_force_host_platform_device_count=4 [TMP_DIR [--unsynced]]: one run's batch on 1, 2
and 4 devices.

Part 1 — one PPO iteration (``OnPolicyLearner.learn``: reward normalization, GAE, advantage normalization, the
gradient step) on one trajectory of 8 envs, on 1 device and split by envs over 2 and 4 devices: the largest
differences of the new parameters, of Adam's moments (its first moment is 0.1 × the clipped gradient: the
gradients themselves), of the return statistics and of the losses.
Part 1b — one DQN update (the off-policy loop's agent) on a batch of 16, likewise.
Part 2 — ``train(devices_per_run=k)`` of PPO on cartpole for k = 1, 2, 4 and of SAC on pendulum (a replay buffer
per device) for k = 1, 2: the returns of the first and last chunks and the env steps counted; in TMP_DIR, a run resumed with another devices_per_run and with the same;
and (``--unsynced``) what happens when the agent does not synchronize
its gradients. Prints one JSON line."""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

import envs
from agents import dqn, ppo, sac
from rlkit import devices, on_policy
from rlkit.configs import ConfigError
from rlkit.devices import RunsPlacement
from rlkit.sweeps import make_runs
from rlkit.training import train

E, T = 8, 16
env = envs.make("cartpole")
spec = env.spec
config = ppo.PPOConfig(
    hidden_sizes=(16, 16), num_envs=E, num_steps=T, num_minibatches=1, update_epochs=1, normalize_reward=True
)
runs = make_runs(config, seeds=1)
cfg0 = jax.tree.map(lambda x: x[0], runs.config)
learner = on_policy.learner_for(ppo.make_ppo, config, spec, ())
agent = ppo.make_ppo(cfg0, spec)

# a trajectory the agent itself could have played: its own actions, log-probs and values on random observations
keys = jax.random.split(jax.random.key(0), 6)
obs = jax.random.normal(keys[0], (T, E, 4))
final_obs = jax.random.normal(keys[1], (T, E, 4))
state = learner.start(cfg0, agent, jax.random.key(1), jax.random.key(2), obs[0], None)
action, log_prob, value = jax.vmap(jax.vmap(agent.sample, in_axes=(None, 0, 0)), in_axes=(None, 0, 0))(
    state.agent_state, obs, jax.random.split(keys[2], (T, E))
)
done = jax.random.bernoulli(keys[3], 0.1, (T, E))
traj = {
    "obs": obs,
    "action": action,
    "log_prob": log_prob,
    "value": value,
    "reward": jax.random.normal(keys[4], (T, E, 1)),
    "final_obs": final_obs,
    "terminated": jnp.logical_and(done, jax.random.bernoulli(keys[5], 0.5, (T, E))),
    "done": done,
}
state = state.replace(discounted_return=jax.random.normal(keys[5], (E, 1)))


def learn(cfg, s, tr):
    return learner.learn(cfg, ppo.make_ppo(cfg, spec), s, tr)


one_state, one_metrics = jax.jit(learn)(cfg0, state, traj)


def split(k):
    """State and trajectory of one run as k devices hold them: [1, k, ...], envs split in k blocks."""

    def by_env(x, axis):
        x = jnp.moveaxis(x.reshape(x.shape[:axis] + (k, -1) + x.shape[axis + 1 :]), axis, 0)
        return x[None]

    s = jax.tree.map(lambda x: jnp.broadcast_to(x, (1, k) + x.shape), state)  # the agent: a copy per device
    s = s.replace(obs=by_env(state.obs, 0), discounted_return=by_env(state.discounted_return, 0))
    return s, jax.tree.map(lambda x: by_env(x, 1), traj)


def gap(a, b):
    return max(
        float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


result = {"devices": jax.device_count()}
for k in (2, 4):
    placement = RunsPlacement.for_runs(1, devices_per_run=k)
    s, tr = split(k)
    program = jax.jit(placement.map(learn, (False, True, True), (True, False)))
    k_state, k_metrics = program(
        placement.put(runs.config), placement.put(s, per_device=True), placement.put(tr, per_device=True)
    )
    used = len(jax.tree.leaves(k_state.agent_state.params)[0].sharding.device_set)
    k_state, k_metrics = jax.device_get((k_state, k_metrics))
    for i in range(k):  # every device's copy against the 1-device result
        copy = jax.tree.map(lambda x, i=i: x[0, i], k_state)
        adam = copy.agent_state.opt_state.inner_state[1][0]
        one_adam = one_state.agent_state.opt_state.inner_state[1][0]
        result[f"{k}/params"] = max(
            result.get(f"{k}/params", 0), gap(copy.agent_state.params, one_state.agent_state.params)
        )
        result[f"{k}/grad"] = max(result.get(f"{k}/grad", 0), gap(adam.mu, one_adam.mu) / 0.1)
        result[f"{k}/grad_sq"] = max(result.get(f"{k}/grad_sq", 0), gap(adam.nu, one_adam.nu))
        result[f"{k}/return_stats"] = max(
            result.get(f"{k}/return_stats", 0), gap(copy.return_stats, one_state.return_stats)
        )
    result[f"{k}/loss"] = max(
        abs(float(k_metrics[m][0]) - float(one_metrics[m])) for m in ("loss/policy", "loss/value")
    )
    result[f"{k}/devices_used"] = used
# part 1b — one DQN update (the off-policy loop's) on a batch of 16, on 1 device and split over 2 and 4
dqn_config = dqn.DQNConfig(hidden_sizes=(16,), batch_size=16, buffer_size=64, num_envs=4)
dqn_cfg = jax.tree.map(lambda x: x[0], make_runs(dqn_config, seeds=1).config)
dqn_agent = dqn.make_dqn(dqn_cfg, spec)
bk = jax.random.split(jax.random.key(3), 4)
dqn_batch = {
    "obs": jax.random.normal(bk[0], (16, 4)),
    "action": jax.random.randint(bk[1], (16,), 0, 2),
    "reward": jax.random.normal(bk[2], (16,)),
    "next_obs": jax.random.normal(bk[3], (16, 4)),
    "terminated": jnp.arange(16) % 5 == 0,
}
dqn_state = dqn_agent.init(jax.random.key(4))


def dqn_update(cfg, s, batch):
    return dqn.make_dqn(cfg, spec).update(s, batch, jax.random.key(5))


one_dqn, _ = jax.jit(dqn_update)(dqn_cfg, dqn_state, dqn_batch)
for k in (2, 4):
    placement = RunsPlacement.for_runs(1, devices_per_run=k)
    s = jax.tree.map(lambda x, k=k: jnp.broadcast_to(x, (1, k) + x.shape), dqn_state)
    b = jax.tree.map(lambda x, k=k: x.reshape((1, k, -1) + x.shape[1:]), dqn_batch)
    program = jax.jit(placement.map(dqn_update, (False, True, True), (True, False)))
    out = jax.device_get(
        program(
            placement.put(make_runs(dqn_config, seeds=1).config),
            placement.put(s, per_device=True),
            placement.put(b, per_device=True),
        )[0]
    )
    for i in range(k):
        copy = jax.tree.map(lambda x, i=i: x[0, i], out)
        result[f"dqn{k}/grad"] = max(
            result.get(f"dqn{k}/grad", 0),
            gap(copy.opt.inner_state[1][0].mu, one_dqn.opt.inner_state[1][0].mu) / 0.1,
        )
        result[f"dqn{k}/params"] = max(result.get(f"dqn{k}/params", 0), gap(copy.params, one_dqn.params))
result["dqn_grad_scale"] = (
    float(max(np.max(np.abs(x)) for x in jax.tree.leaves(one_dqn.opt.inner_state[1][0].mu))) / 0.1
)
result["grad_scale"] = (
    float(
        max(np.max(np.abs(x)) for x in jax.tree.leaves(one_state.agent_state.opt_state.inner_state[1][0].mu))
    )
    / 0.1
)

# part 2: training
train_config = ppo.PPOConfig(
    hidden_sizes=(32, 32), num_envs=8, num_steps=32, iterations_per_chunk=8, learning_rate=2.5e-3
)
trainer = ppo.make_trainer(train_config, env)
train_runs = make_runs(train_config, seeds=2)
for k in (1, 2, 4):
    done = train(trainer, train_runs, total_steps=8 * 2048, devices_per_run=k, console=False)
    result[f"train{k}/first"] = float(np.mean(done.history[0]["episode_return"]))
    result[f"train{k}/last"] = float(np.mean(done.history[-1]["episode_return"]))
    result[f"train{k}/env_steps"] = int(np.asarray(done.metrics["env_steps"])[0])
    result[f"train{k}/state_shape"] = list(np.shape(done.state.obs))

# part 2b — SAC on pendulum, its replay buffer and batch split over the devices
sac_config = sac.SACConfig(
    hidden_sizes=(64, 64),
    num_envs=4,
    batch_size=128,
    buffer_size=8000,
    learning_starts=1000,
    chunk_steps=250,
    updates_per_step=4,
)
sac_trainer = sac.make_trainer(sac_config, envs.make("pendulum"))
for k in (1, 2):
    done = train(
        sac_trainer,
        make_runs(sac_config, seeds=1),
        total_steps=8000,
        devices_per_run=k,
        console=False,
        eval_every=8,
    )
    result[f"sac{k}/first"] = float(np.mean(done.history[0]["episode_return"]))  # random actions (warm-up)
    result[f"sac{k}/last_eval"] = float(np.mean(done.history[-1]["eval_return"]))
    result[f"sac{k}/env_steps"] = int(np.asarray(done.metrics["env_steps"])[0])

if len(sys.argv) > 1:  # a run directory: resuming with another devices_per_run is refused before compiling
    log_dir = f"{sys.argv[1]}/run"
    train(trainer, train_runs, total_steps=2048, devices_per_run=2, console=False, log_dir=log_dir)
    try:
        train(
            trainer,
            train_runs,
            total_steps=4096,
            devices_per_run=4,
            console=False,
            log_dir=log_dir,
            resume=True,
        )
        result["resume_other_k"] = "resumed"
    except ConfigError as err:
        result["resume_other_k"] = str(err)
    done = train(
        trainer, train_runs, total_steps=4096, devices_per_run=2, console=False, log_dir=log_dir, resume=True
    )
    result["resume_same_k_steps"] = int(np.asarray(done.metrics["env_steps"])[0])
    # the CLI: rlkit train --devices-per-run 2, then its exported agent evaluated
    from experiments import cli
    from experiments.train import main

    main(["--agent", "ppo", "--env", "cartpole", "--devices-per-run", "2", "--seeds", "2", "--num-envs", "4",
          "--num-steps", "32", "--iterations-per-chunk", "4", "--total-steps", "1024", "--log-dir",
          f"{sys.argv[1]}/cli"])  # fmt: skip
    result["cli_eval_return"] = float(
        cli.evaluate(cli.EvalArgs(f"{sys.argv[1]}/cli/agent.rlkit", episodes=2))["eval_return"]
    )
    result["cli_record"] = json.load(open(f"{sys.argv[1]}/cli/config.json")).get("devices_per_run")

if "--unsynced" in sys.argv:  # an agent that forgets to synchronize its gradients
    devices.batch_mean = lambda tree: tree
    try:
        train(trainer, train_runs, total_steps=2048, devices_per_run=2, console=False)
        result["unsynced"] = "trained"
    except ConfigError as err:
        result["unsynced"] = str(err)
print(json.dumps(result))
