"""Multi-process JAX (issue 15): the same sweep through ``jax.distributed`` on 2 processes (loopback, one CPU
device each, the runs axis split over both) gives the 1-process numbers — every chunk's metrics and every run's
final parameters — up to the float rounding of a differently partitioned XLA program. Also one run over the
devices of both processes (``devices_per_run = 2``) against the same on 2 devices of one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.ports import free_port

ROOT = Path(__file__).resolve().parents[1]


def _run(
    num_processes: int, out: Path, devices_per_run: int = 1, forced_devices: int = 1, logs: tuple = ()
) -> list[str]:
    xla = f"--xla_force_host_platform_device_count={forced_devices}" if forced_devices > 1 else ""
    env = dict(os.environ, PYTHONPATH=str(ROOT), XLA_FLAGS=xla, JAX_PLATFORMS="cpu")
    port = free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.helpers.multiprocess_worker",
                str(num_processes),
                str(i),
                str(port),
                str(out),
                str(devices_per_run),
                *map(str, logs),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(num_processes)
    ]
    outputs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr[-3000:]
        outputs.append(stdout)
    return outputs


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The reference: the sweep in one process, 400 steps in one go, no logs."""
    out = tmp_path_factory.mktemp("one") / "one.npz"
    _run(1, out)
    return np.load(out)


def test_two_processes_give_the_one_process_numbers(tmp_path, one_process):
    _run(2, tmp_path / "two.npz")
    one, two = one_process, np.load(tmp_path / "two.npz")
    assert list(two["devices"]) == [2, 2, 2]  # 2 devices over 2 processes, the mesh on both
    assert int(two["local_runs"][0]) == 1  # process 0 held one of the two shards (2 of the 4 runs)
    assert list(one["devices"]) == [1, 1, 1]
    params = [k for k in one.files if k.startswith("param_")]
    assert params and sorted(params) == sorted(k for k in two.files if k.startswith("param_"))
    for k in params:
        assert one[k].shape[0] == 4
        np.testing.assert_allclose(two[k], one[k], atol=1e-4, err_msg=k)
    metrics = [k for k in one.files if k.startswith("chunk")]
    assert "chunk3/eval_return" in metrics and len(metrics) > 8
    for k in metrics:
        np.testing.assert_allclose(two[k], one[k], rtol=1e-3, atol=1e-2, err_msg=k)
    assert np.ptp(one["chunk3/eval_return"]) > 0  # the four runs really differ


def test_one_run_over_devices_of_two_processes_gives_the_one_process_numbers(tmp_path):
    # each run's envs, replay buffer and batch split over 2 devices: one per process, or 2 forced in one process
    _run(1, tmp_path / "one.npz", devices_per_run=2, forced_devices=2)
    _run(2, tmp_path / "two.npz", devices_per_run=2)
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert list(two["devices"]) == [2, 2, 2] and list(one["devices"]) == [2, 2, 1]
    params = [k for k in one.files if k.startswith("param_")]
    assert params and sorted(params) == sorted(k for k in two.files if k.startswith("param_"))
    for k in params:
        assert one[k].shape[:2] == (4, 2)  # 4 runs × a copy per device
        np.testing.assert_allclose(two[k], one[k], atol=1e-4, err_msg=k)
        np.testing.assert_array_equal(two[k][:, 0], two[k][:, 1])  # the copies on the two processes are equal
    metrics = [k for k in one.files if k.startswith("chunk")]
    assert "chunk1/eval_return" in metrics
    for k in metrics:
        np.testing.assert_allclose(two[k], one[k], rtol=1e-3, atol=1e-2, err_msg=k)
    assert np.ptp(one["chunk1/eval_return"]) > 0


def test_two_processes_log_once_checkpoint_and_resume_to_the_one_process_numbers(tmp_path, one_process):
    import json

    run_dir = tmp_path / "run"
    _run(2, tmp_path / "first.npz", 1, 1, (run_dir, 200))  # 2 processes: the first 200 steps, then stopped
    steps = sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [100, 200]
    outputs = _run(2, tmp_path / "two.npz", 1, 1, (run_dir, 400))  # re-launched: resumes from step 200
    assert "resuming" in outputs[0] and "resuming" not in outputs[1]  # the notice is printed once
    one, two = one_process, np.load(tmp_path / "two.npz")
    for k in (k for k in one.files if k.startswith("param_")):
        np.testing.assert_allclose(two[k], one[k], atol=1e-4, err_msg=k)
    logs = sorted(run_dir.glob("**/metrics.jsonl"))
    assert len(logs) == 4  # one per run
    for log in logs:
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        assert [r["step"] for r in rows] == [100, 200, 300, 400], log  # each chunk logged once, by process 0
    record = json.loads((run_dir / "config.json").read_text())
    assert [r["step"] for r in record["resumes"]] == [200]


def _cli(num_processes: int, log_dir: Path) -> list[str]:
    flags = ["--agent", "ppo", "--env", "cartpole", "--seeds", "2", "--num-envs", "4", "--num-steps", "32",
             "--iterations-per-chunk", "4", "--total-steps", "1024", "--hidden-sizes", "16", "16",
             "--log-dir", str(log_dir)]  # fmt: skip
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), XLA_FLAGS="", JAX_PLATFORMS="cpu")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "experiments.cli", "train", *flags]
            + (["--distributed", f"127.0.0.1:{port},{num_processes},{i}"] if num_processes > 1 else []),
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(num_processes)
    ]
    outputs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr[-3000:]
        outputs.append(stdout)
    return outputs


def test_rlkit_train_distributed_on_two_processes_gives_the_one_process_run(tmp_path):
    import json

    _cli(1, tmp_path / "one")
    outputs = _cli(2, tmp_path / "two")
    assert "final eval_return" in outputs[0] and "final eval_return" not in outputs[1]  # process 0 summarizes
    one, two = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("one", "two"))
    np.testing.assert_allclose(two["groups"][0]["final_mean"], one["groups"][0]["final_mean"], rtol=1e-3)
    assert (tmp_path / "two" / "agent.rlkit").exists()
    for d in ("one", "two"):
        logs = sorted((tmp_path / d).glob("**/metrics.jsonl"))
        assert len(logs) == 2
    rows = [
        json.loads(x) for x in sorted((tmp_path / "two").glob("**/metrics.jsonl"))[0].read_text().splitlines()
    ]
    assert [r["step"] for r in rows] == [512, 1024]  # each chunk once


def test_a_malformed_distributed_address_is_one_line():
    from experiments.train import join_processes
    from rlkit.configs import ConfigError

    with pytest.raises(ConfigError, match=r"^--distributed '127.0.0.1:99,2,2': expected auto, or HOST:PORT"):
        join_processes("127.0.0.1:99,2,2")
