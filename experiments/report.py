"""``rlkit report SWEEP_DIR``: one table over a sweep's finished trials — per config, the IQM, mean and median of
the runs' final scores with 95% stratified-bootstrap CIs (and the median of env means across envs), the optimality gap, and the probability of improvement
between named configs — plus learning-curve and performance-profile figures.

    rlkit report sweeps/lr                                   # report.md / report.json / figures in sweeps/lr/report/
    rlkit report sweeps/lr --metric eval_return --target 200 --compare "learning_rate=0.001" "learning_rate=0.0003"
    rlkit report sweeps/lr --normalize cartpole=0,500 --normalize acrobot=-500,0      # also across envs

A *config* is one trial's static values with one point's swept values, on one env; its runs are its seeds. A run's
score is the last value of ``--metric`` it logged (default: the agent's ``score`` — ``eval_return``, a goal agent's
``eval_success_any`` — when every run evaluated, else ``episode_return``). Configs are labelled by what varies across the sweep (``hidden_sizes=[32]/
learning_rate=0.001``); ``--compare A B`` takes labels (or a part of one that names a single config).

The intervals are rliable's (Agarwal et al. 2021): ``rliable.library.get_interval_estimates`` with the percentile
stratified bootstrap (runs resampled within each env), ``metrics.aggregate_iqm`` / ``aggregate_mean`` /
``aggregate_median`` (across envs) / ``aggregate_optimality_gap`` (γ = ``--target``; the gap column appears only with one) and
``metrics.probability_of_improvement``; the performance profile is ``create_performance_profile``. Per env the
scores are raw; ``--normalize ENV=LOW,HIGH`` for every env adds a table across envs on (x − low) / (high − low),
the only scale on which returns of different envs can be averaged (without it, envs are never pooled). The
bootstrap is seeded (``--seed``), so the same trials give the same report. rliable is an extra: ``pip install
"rlkit[report]"``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from rlkit.configs import ConfigError


def _interval_estimates(library, *args, seed: int, **kwargs):
    """rliable's ``get_interval_estimates``, reproducible. rliable 1.2's ``StratifiedBootstrap.update_indices``
    draws the resampled runs from NumPy's *global* RNG (``np.random.choice``), so its ``random_state`` alone does
    not fix the intervals: the global RNG is seeded for the call and restored after it. arch's notice that
    ``random_state`` will become ``generator`` is rliable's call, not ours to change, and is silenced."""
    import warnings

    saved = np.random.get_state()  # noqa: NPY002 (rliable draws from the global RNG)
    try:
        np.random.seed(seed)  # noqa: NPY002 (rliable draws from the global RNG)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "random_state is deprecated", FutureWarning)
            return library.get_interval_estimates(*args, random_state=np.random.RandomState(seed), **kwargs)
    finally:
        np.random.set_state(saved)  # noqa: NPY002 (rliable draws from the global RNG)


def _rliable():
    try:
        from rliable import library, metrics
    except ImportError:
        raise ConfigError(
            'rlkit report needs rliable, which is not installed: pip install "rlkit[report]" (in a checkout: '
            'pip install -e ".[report]")'
        ) from None
    return library, metrics


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "[" + ",".join(_fmt(x) for x in v) + "]"
    return str(v)


def collect(sweep_dir: Path, metric: str | None) -> tuple[list[dict], str, list[str]]:
    """``(configs, metric, unfinished trial names)``; each config: env, label values, scores [runs], curves."""
    from experiments.sweep import Trial, trial_status
    from rlkit.plots import load_curves

    path = sweep_dir / "sweep.json"
    if not path.is_file():
        raise ConfigError(
            f"{sweep_dir} is not a sweep directory (no sweep.json; `rlkit sweep SPEC` writes one)"
        )
    trials = [Trial(**t) for t in json.loads(path.read_text())["trials"]]
    finished = [t for t in trials if trial_status(sweep_dir, t) == "finished"]
    unfinished = [t.name for t in trials if t not in finished]
    if not finished:
        raise ConfigError(
            f"{sweep_dir}: no finished trials ({len(trials)} in the sweep, none with a summary.json); launch or "
            "re-launch it with `rlkit sweep SPEC`"
        )
    from experiments.sweep import build
    from rlkit.sweeps import make_runs

    configs = []
    for t in finished:
        args, config, points = build(t)
        points = [p for p in points if p] or None
        runs = make_runs(config, seeds=args.seeds, points=points)
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(runs.names):
            groups.setdefault(name.rpartition("seed_")[0].rstrip("/"), []).append(i)
        for members in groups.values():
            point = {k: v for k, v in runs.values[members[0]].items() if k != "seed"}
            files = [sweep_dir / "trials" / t.name / runs.names[i] / "metrics.jsonl" for i in members]
            configs.append(
                {"trial": t.name, "env": t.env, "values": {**t.label, **_jsonable(point)}, "files": files}
            )
    if (
        metric is None
    ):  # the agents' score (eval_return; a goal agent's success rate) where every run logged it
        from rlkit import registry

        scores = {registry.get(t.agent).score for t in finished}
        score = scores.pop() if len(scores) == 1 else "eval_return"
        metric = (
            score if all(score in f.read_text() for c in configs for f in c["files"]) else "episode_return"
        )
    for c in configs:
        try:
            steps, values = load_curves(c["files"], metric)
        except ValueError as err:
            raise ConfigError(f"trial {c['trial']}: {err}") from None
        finals = []
        for row in values:  # each run's last finite value
            finite = row[np.isfinite(row)]
            finals.append(finite[-1] if finite.size else np.nan)
        c["scores"], c["steps"], c["curves"] = np.asarray(finals), steps, values
    varying = [k for k in dict.fromkeys(k for c in configs for k in c["values"])
               if len({json.dumps(c["values"].get(k)) for c in configs}) > 1 and k != "env"]  # fmt: skip
    for c in configs:
        c["label"] = (
            "/".join(f"{k}={_fmt(c['values'][k])}" for k in varying if k in c["values"]) or c["trial"]
        )
    return configs, metric, unfinished


def _jsonable(values: dict) -> dict:
    return json.loads(json.dumps({k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in values.items()}))


def _find(label: str, labels: list[str]) -> str:
    if label in labels:
        return label
    hits = [x for x in labels if label in x]
    if len(hits) == 1:
        return hits[0]
    what = f"matches {len(hits)} configs ({hits[:4]})" if hits else "matches no config"
    raise ConfigError(f"--compare {label!r} {what}; the configs are: {labels}")


def _normalization(items: list[str], envs_: list[str]) -> dict[str, tuple[float, float]]:
    out = {}
    for item in items:
        env, sep, bounds = item.rpartition("=")
        try:
            low, high = (float(x) for x in bounds.split(","))
        except ValueError:
            raise ConfigError(f"--normalize expects ENV=LOW,HIGH, got {item!r}") from None
        if not sep or env not in envs_:
            raise ConfigError(f"--normalize {item!r}: the sweep's envs are {envs_}")
        if not high > low:
            raise ConfigError(f"--normalize {item!r}: needs HIGH > LOW")
        out[env] = (low, high)
    if out and set(out) != set(envs_):
        raise ConfigError(
            f"--normalize: give every env of the sweep ({envs_}); missing {sorted(set(envs_) - set(out))}"
        )
    return out


def aggregate(score_dict: dict[str, np.ndarray], target: float | None, reps: int, seed: int) -> dict:
    """label -> {statistic: (point, low, high)} with rliable's stratified bootstrap; scores [runs, tasks]. The
    median is rliable's, the median over tasks of each task's mean, so it is reported only across envs."""
    library, metrics = _rliable()
    funcs = {"IQM": metrics.aggregate_iqm, "mean": metrics.aggregate_mean}
    if next(iter(score_dict.values())).shape[1] > 1:
        funcs["median of env means"] = metrics.aggregate_median
    if target is not None:
        funcs["optimality gap"] = lambda s: metrics.aggregate_optimality_gap(s, target)

    def all_stats(scores):
        return np.array([f(scores) for f in funcs.values()])

    points, intervals = _interval_estimates(library, score_dict, all_stats, reps=reps, seed=seed)
    return {
        label: {name: (float(points[label][i]), float(intervals[label][0, i]), float(intervals[label][1, i]))
                for i, name in enumerate(funcs)}
        for label in score_dict
    }  # fmt: skip


def improvement(pairs: dict[str, tuple[np.ndarray, np.ndarray]], reps: int, seed: int) -> dict:
    library, metrics = _rliable()
    points, intervals = _interval_estimates(
        library,
        pairs,
        metrics.probability_of_improvement,
        reps=reps,
        seed=seed,
    )
    return {k: (float(np.ravel(points[k])[0]), *(float(x) for x in np.ravel(intervals[k]))) for k in pairs}


def _table(title: str, stats: dict, runs: dict) -> list[str]:
    names = list(next(iter(stats.values())))
    lines = [f"### {title}", "", "| config | runs | " + " | ".join(names) + " |",
             "|---|---:|" + "---:|" * len(names)]  # fmt: skip
    for label, row in stats.items():
        cells = [f"{p:.2f} [{lo:.2f}, {hi:.2f}]" for p, lo, hi in row.values()]
        lines.append(f"| {label} | {runs[label]} | " + " | ".join(cells) + " |")
    return lines + [""]


def report(sweep_dir: str | Path, *, metric: str | None = None, target: float | None = None,
           compare: list[list[str]] | None = None, normalize: list[str] | None = None, reps: int = 2000,
           seed: int = 0, out: str | Path | None = None, stream=sys.stdout) -> dict:  # fmt: skip
    """Write ``report.md``, ``report.json``, ``learning_curves.png`` and ``performance_profile.png`` into ``out``
    (default ``SWEEP_DIR/report``); returns the report's numbers."""
    _rliable()
    sweep_dir = Path(sweep_dir)
    if reps < 100:
        raise ConfigError(f"--reps {reps}: a bootstrap needs at least 100 resamples")
    configs, metric, unfinished = collect(sweep_dir, metric)
    env_ids = list(dict.fromkeys(c["env"] for c in configs))
    bounds = _normalization(normalize or [], env_ids)
    result = {"metric": metric, "unfinished": unfinished, "per_env": {}, "compare": {}, "across_envs": None}
    lines = [f"# Sweep report: {sweep_dir}", "",
             f"Score = each run's last `{metric}`; IQM / mean [95% stratified bootstrap CI, {reps} "
             "resamples, rliable]" + (f"; optimality gap to {target:g}" if target is not None else ""), ""]  # fmt: skip
    if unfinished:
        lines += [f"Not finished (left out): {', '.join(unfinished)}", ""]
    for env_id in env_ids:
        here = [c for c in configs if c["env"] == env_id]
        scores = {c["label"]: c["scores"][:, None] for c in here}
        stats = aggregate(scores, target, reps, seed)
        result["per_env"][env_id] = {
            c["label"]: {"runs": len(c["scores"]), "scores": c["scores"].tolist(), **stats[c["label"]]}
            for c in here
        }
        lines += _table(f"{env_id}", stats, {c["label"]: len(c["scores"]) for c in here})
    for a, b in compare or []:
        for env_id in env_ids:
            labels = [c["label"] for c in configs if c["env"] == env_id]
            la, lb = _find(a, labels), _find(b, labels)
            sa, sb = (
                next(c["scores"] for c in configs if c["env"] == env_id and c["label"] == x) for x in (la, lb)
            )
            key = f"P({la} > {lb}) on {env_id}"
            result["compare"][key] = improvement({key: (sa[:, None], sb[:, None])}, reps, seed)[key]
    if result["compare"]:
        lines += ["### Probability of improvement [95% CI]", ""]
        lines += [f"- {k}: {p:.2f} [{lo:.2f}, {hi:.2f}]" for k, (p, lo, hi) in result["compare"].items()] + [
            ""
        ]
    if bounds:
        result["across_envs"] = _across(configs, env_ids, bounds, target, reps, seed, lines)
    out = Path(out) if out else sweep_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    _figures(configs, metric, out, reps, seed)
    lines += [
        "![learning curves](learning_curves.png)",
        "",
        "![performance profile](performance_profile.png)",
        "",
    ]
    text = "\n".join(lines)
    (out / "report.md").write_text(text)
    (out / "report.json").write_text(json.dumps(result, indent=2))
    print(text, file=stream)
    return result


def _across(configs, env_ids, bounds, target, reps, seed, lines) -> dict:
    """Configs present on every env (the same label), scores normalized per env, stratified over envs."""
    labels = [lb for lb in dict.fromkeys(c["label"] for c in configs)
              if all(any(c["label"] == lb and c["env"] == e for c in configs) for e in env_ids)]  # fmt: skip
    score_dict = {}
    for label in labels:
        cols = []
        for env_id in env_ids:
            low, high = bounds[env_id]
            s = next(c["scores"] for c in configs if c["label"] == label and c["env"] == env_id)
            cols.append((s - low) / (high - low))
        if len({len(c) for c in cols}) != 1:
            raise ConfigError(f"config {label}: its envs have different numbers of runs; cannot stratify")
        score_dict[label] = np.stack(cols, axis=1)
    if not score_dict:
        return {}
    stats = aggregate(score_dict, target, reps, seed)
    lines += _table(
        f"across {', '.join(env_ids)} (normalized)", stats, {k: v.shape[0] for k, v in score_dict.items()}
    )
    return stats


def _figures(configs, metric: str, out: Path, reps: int, seed: int) -> None:
    """``learning_curves.png`` (IQM over runs per step, 95% CI band) and ``performance_profile.png`` (the fraction
    of runs scoring above τ, 95% CI band), one panel per env."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    library, metrics = _rliable()
    env_ids = list(dict.fromkeys(c["env"] for c in configs))
    curves_fig, curves_axes = plt.subplots(1, len(env_ids), figsize=(5.5 * len(env_ids), 4), squeeze=False)
    profile_fig, profile_axes = plt.subplots(1, len(env_ids), figsize=(5.5 * len(env_ids), 4), squeeze=False)
    for ax, profile_ax, env_id in zip(curves_axes[0], profile_axes[0], env_ids):
        here = [c for c in configs if c["env"] == env_id]
        for c in here:
            keep = np.all(np.isfinite(c["curves"]), axis=0)  # steps every run logged
            if not keep.any():
                continue
            curves = c["curves"][:, keep]
            point, ci = _interval_estimates(
                library,
                {"c": curves[:, None, :]},
                lambda s: np.array([metrics.aggregate_iqm(s[..., k]) for k in range(s.shape[-1])]),
                reps=min(reps, 500),
                seed=seed,
            )
            line = ax.plot(c["steps"][keep], point["c"], label=c["label"])[0]
            ax.fill_between(c["steps"][keep], ci["c"][0], ci["c"][1], alpha=0.2, color=line.get_color())
        ax.set_title(f"{env_id}: IQM {metric} (95% CI)", fontsize=9)
        ax.set_xlabel("env steps")
        ax.legend(fontsize=7)
        scores = {c["label"]: c["scores"][:, None] for c in here}
        values = np.concatenate([s.ravel() for s in scores.values()])
        taus = np.linspace(np.nanmin(values), np.nanmax(values) + 1e-9, 101)
        saved = np.random.get_state()  # noqa: NPY002 (see _interval_estimates)
        np.random.seed(seed)  # noqa: NPY002 (rliable draws from the global RNG)
        profiles, cis = library.create_performance_profile(scores, taus, reps=min(reps, 500))
        np.random.set_state(saved)  # noqa: NPY002 (rliable draws from the global RNG)
        for label, prof in profiles.items():
            line = profile_ax.plot(taus, prof, label=label)[0]
            profile_ax.fill_between(taus, cis[label][0], cis[label][1], alpha=0.2, color=line.get_color())
        profile_ax.set_title(f"{env_id}: fraction of runs with score > τ (95% CI)", fontsize=9)
        profile_ax.set_xlabel(f"τ ({metric})")
        profile_ax.legend(fontsize=7)
    for fig, name in ((curves_fig, "learning_curves.png"), (profile_fig, "performance_profile.png")):
        fig.tight_layout()
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
