"""Run with XLA_FLAGS=--xla_force_host_platform_device_count=4: the same sweep on 4 devices and on 1 device.
Prints one JSON line: device count, placements used, and the largest differences between the two."""

import json

import jax
import numpy as np

import envs
from agents import sac
from rlkit.sweeps import make_runs
from rlkit.training import train

config = sac.SACConfig(
    hidden_sizes=(16, 16), learning_starts=100, buffer_size=2000, chunk_steps=100, batch_size=32
)
trainer = sac.make_trainer(config, envs.make("pendulum"))
runs = make_runs(config, seeds=2, sweep={"q_lr": [1e-3, 3e-4]})
one = train(trainer, runs, total_steps=400, max_devices=1, eval_every=2)
four = train(trainer, runs, total_steps=400, max_devices=4, eval_every=2)
state_diff = max(
    float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
    for a, b in zip(
        jax.tree.leaves(jax.device_get(one.state.agent_state)),
        jax.tree.leaves(jax.device_get(four.state.agent_state)),
    )
)
metric_diff = max(
    float(np.nanmax(np.abs(one.history[i][k] - four.history[i][k])))
    for i in range(len(one.history))
    for k in one.history[i]
    if np.isfinite(one.history[i][k]).any()
)
sharding = four.state.obs.sharding
print(
    json.dumps(
        {
            "devices": jax.device_count(),
            "four_uses": len(sharding.device_set),
            "state_diff": state_diff,
            "metric_diff": metric_diff,
            "runs_differ": bool(np.ptp(np.asarray(one.history[-1]["eval_return"])) > 0),
        }
    )
)
