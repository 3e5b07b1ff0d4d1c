"""Learning-curve figures: mean over runs with a 95% bootstrap confidence band, written as PNG.

Reads the per-run JSON-lines files that ``rlkit.logger.RunLogger`` writes (or arrays given directly), aligns the
runs on their logged steps, and draws one line per group (e.g. per algorithm or per swept value) with its band.
The band is a percentile bootstrap over runs of the mean, the interval rliable-style reports use for few seeds.
``load_run_dir_curves`` reads a run directory of ``rlkit train`` as one curve per swept value (runs grouped by
their name without the final ``seed_N``), so seeds are averaged and different values never are.

Deliberately not here: IQM / performance-profile tables (they belong with the aggregation code of the
experiment scripts) and interactive plots.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers / CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rlkit.logger import read_jsonl  # noqa: E402
from rlkit.statistics import bootstrap_ci  # noqa: E402


def mean_ci(values: np.ndarray):
    """Mean over runs and its 95% bootstrap band, per point of ``values[runs, points]``.

    A run without a finished episode at some step is NaN there; a resample of only such runs has no mean, which
    NumPy reports as a warning. That is expected here, not an error: the point is simply left out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return bootstrap_ci(np.atleast_2d(values), np.nanmean)


def load_curves(jsonl_paths: Sequence[str | os.PathLike], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps[P], values[runs, P])`` of ``metric`` on the steps any run has a value for (missing → NaN)."""
    runs = []
    for path in jsonl_paths:
        rows = [r for r in read_jsonl(path) if metric in r]
        runs.append({r["step"]: (np.nan if r[metric] is None else r[metric]) for r in rows})
    if not runs or not any(runs):
        raise ValueError(f"no run in {list(map(str, jsonl_paths))} logged {metric!r}")
    steps = np.array(sorted(set().union(*runs)))
    values = np.array([[run.get(s, np.nan) for s in steps] for run in runs], np.float64)
    keep = ~np.all(np.isnan(values), axis=0)  # e.g. the first chunks, before any episode has ended
    if not keep.any():
        raise ValueError(f"{metric!r} has no finite value in {list(map(str, jsonl_paths))}")
    return steps[keep], values[:, keep]


def group_name(run_name: str) -> str:
    """The swept value a run belongs to: its name without the final ``seed_N`` component
    (``"q_lr=0.001/seed_3"`` → ``"q_lr=0.001"``; ``"seed_0"`` → ``""``, the one group of a run without a sweep)."""
    parts = PurePosixPath(run_name).parts
    if parts and re.fullmatch(r"seed_\d+", parts[-1]):
        parts = parts[:-1]
    return "/".join(p for p in parts if p != ".")


def group_runs(names: Iterable[str]) -> dict[str, list[str]]:
    """Run names grouped by ``group_name``, groups in order of first appearance."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(group_name(name), []).append(name)
    return groups


def load_run_dir_curves(
    run_dir: str | os.PathLike, metric: str, skipped: list[str] | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``group -> (steps, values[runs, P])`` for every ``*/metrics.jsonl`` under ``run_dir``, one entry per swept
    value (``group_name``; ``""`` for a run directory without a sweep). A group without a finite value of ``metric``
    is left out and its name appended to ``skipped``. Raises ``ValueError`` (one line) when there is no metrics
    file or no group has the metric, naming the metrics that were logged."""
    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("**/metrics.jsonl"))
    if not files:
        raise ValueError(f"no metrics.jsonl under {run_dir} (is it the --log-dir of a run?)")
    names = {f.parent.relative_to(run_dir).as_posix(): f for f in files}
    curves = {}
    for group, members in group_runs(names).items():
        try:
            curves[group] = load_curves([names[m] for m in members], metric)
        except ValueError:  # this group never logged the metric
            if skipped is not None:
                skipped.append(group)
    if not curves:
        logged = sorted({k for f in files for r in read_jsonl(f) for k in r if k != "step"})
        raise ValueError(
            f"no run under {run_dir} logged {metric!r} with a finite value; logged metrics: {', '.join(logged)}"
        )
    return curves


def plot_learning_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    *,
    title: str = "",
    xlabel: str = "env steps",
    ylabel: str = "episode return",
) -> str:
    """Write a PNG with one line + 95% CI band per entry of ``curves`` (``label -> (steps, values[runs, P])``)."""
    return plot_learning_curve_panels({title: curves}, path, xlabel=xlabel, ylabel=ylabel)


def plot_learning_curve_panels(
    panels: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
    path: str | os.PathLike,
    *,
    xlabel: str = "env steps",
    ylabel: str = "episode return",
    columns: int | None = None,
    xscale: str = "linear",
) -> str:
    """Write a PNG with one panel per entry of ``panels`` (``title -> curves``, drawn as in
    ``plot_learning_curves``), in a grid of ``columns`` panels per row (default: one row); ``xscale="log"`` for
    budgets that differ by orders of magnitude."""
    columns = len(panels) if columns is None else max(1, min(columns, len(panels)))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 4 * rows), dpi=120, squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (title, curves) in zip(axes.flat, panels.items()):
        many = len(curves) > 10  # past the default cycle's 10 colours, tab20's distinct ones
        for i, (label, (steps, values)) in enumerate(curves.items()):
            mean, lo, hi = mean_ci(values)
            n = np.atleast_2d(values).shape[0]
            color = plt.cm.tab20(i % 20) if many else None
            (line,) = ax.plot(steps, mean, label=f"{label} (n={n})", color=color)
            ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.25, linewidth=0)
        ax.set_xscale(xscale)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)
