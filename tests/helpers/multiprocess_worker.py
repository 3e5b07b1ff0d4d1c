"""One process of a ``jax.distributed`` run on loopback (``tests/test_multiprocess.py``):

    python -m tests.helpers.multiprocess_worker NUM_PROCESSES PROCESS_ID PORT OUT.npz [DEVICES_PER_RUN [LOG_DIR
    TOTAL_STEPS]]

trains the same 4-run SAC sweep as ``devices_check`` (2 seeds × 2 learning rates) through ``rlkit.training.train``
— with 2 processes the runs axis spans both processes' CPU devices — and process 0 writes every chunk's metrics
and the final parameters of all runs (gathered from both processes) to OUT.npz. With 1 process it is the
reference run, no ``jax.distributed`` at all. DEVICES_PER_RUN = 2: each run's envs, replay buffer and batch
over 2 devices — with 2 processes, one device of each (the reference: 1 process with 2 forced CPU devices).
LOG_DIR and TOTAL_STEPS: logs and checkpoints there, resuming when TOTAL_STEPS > 200 (the first half)."""

import sys

import jax

num_processes, process_id, port, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
devices_per_run = int(sys.argv[5]) if len(sys.argv) > 5 else 1
log_dir = sys.argv[6] if len(sys.argv) > 6 else None
total_steps = int(sys.argv[7]) if len(sys.argv) > 7 else 400
if num_processes > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives across processes
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=num_processes, process_id=process_id)

import numpy as np  # noqa: E402

import envs  # noqa: E402
from agents import sac  # noqa: E402
from rlkit.devices import RunsPlacement  # noqa: E402
from rlkit.sweeps import make_runs  # noqa: E402
from rlkit.training import train  # noqa: E402

config = sac.SACConfig(
    hidden_sizes=(16, 16),
    learning_starts=100,
    buffer_size=2000,
    chunk_steps=100,
    batch_size=32,
    num_envs=devices_per_run,  # an env per device
)
trainer = sac.make_trainer(config, envs.make("pendulum"))
runs = make_runs(config, seeds=2, sweep={"q_lr": [1e-3, 3e-4]})
result = train(
    trainer,
    runs,
    total_steps=total_steps,
    eval_every=2,
    console=False,
    devices_per_run=devices_per_run,
    log_dir=log_dir,
    checkpoint_every=1,
    resume=log_dir is not None and total_steps > 200,  # the second half of a run stopped at step 200
)
placement = RunsPlacement.for_runs(len(runs), devices_per_run=devices_per_run)
params = placement.fetch(result.state.agent_state)
if process_id == 0:
    arrays = {f"param_{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(params))}
    for c, metrics in enumerate(result.history):
        arrays |= {f"chunk{c}/{k}": v for k, v in metrics.items()}
    arrays["devices"] = np.asarray([jax.device_count(), placement.num_devices, jax.process_count()])
    arrays["local_runs"] = np.asarray(
        [len(result.state.obs.addressable_shards) if placement.mesh is not None else len(runs)]
    )
    np.savez(out, **arrays)
print("done", process_id, flush=True)
