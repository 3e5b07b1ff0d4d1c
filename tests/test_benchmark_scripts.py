"""The accelerator benchmark keeps working where there is no accelerator: ``--size smoke --no-peers`` runs every
kind of row (PPO and SAC at several envs, a vmapped sweep of each) in subprocesses and writes its table."""

from __future__ import annotations

from experiments.benchmarks import accelerator


def test_the_accelerator_benchmark_runs_on_cpu_at_smoke_size(tmp_path):
    out = tmp_path / "accelerator.md"
    text = accelerator.main(["--size", "smoke", "--no-peers", "--output", str(out)])
    assert out.read_text() == text
    rows = [line for line in text.splitlines() if line.startswith("| PPO") or line.startswith("| SAC")]
    assert len(rows) == 4, text  # PPO and SAC at 4 envs, and a 2-run sweep of each
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[1].replace(",", "")) > 0, row  # rlkit's steps/s
        assert cells[3] == "not run", row  # no peers asked for
    assert "failed" not in text
