"""The ``rlkit`` command.

rlkit train --agent sac --env pendulum …      train (``rlkit train --agent X --help``: every field documented)
rlkit eval runs/default/agent.rlkit --env pendulum --episodes 20 --video eval.gif
rlkit plot runs/sac runs/td3 --metric eval_return --out curves.png
rlkit envs                                    the registered env ids
rlkit agents                                  the registered agents (what --agent takes), by family
rlkit demos collect --agent-file runs/default/agent.rlkit --episodes 20 --out demos/pendulum
rlkit demos info demos/pendulum               demonstrations from an exported agent, and what a dataset holds
rlkit sweep sweeps/lr.yaml --engine ray       an ablation sweep from a spec: trials on local processes, Ray or SLURM
rlkit report sweeps/lr --compare A B          one table of IQMs with 95% CIs over a sweep's finished trials

A wrong command line (an unknown flag, a value of the wrong type, a value out of range, an unknown env id, a file
that is not an agent) is reported as one line on stderr naming the flag, the value and what is allowed, with exit
status 2, before anything is compiled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import io
import os
import sys
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import tyro

COMMANDS = ("train", "eval", "plot", "envs", "agents", "demos", "sweep", "report")


class UsageError(ValueError):
    """A wrong command line: its message is one line naming the flag, the value and what is allowed."""


@dataclass(frozen=True)
class EvalArgs:
    agent_file: tyro.conf.Positional[str]
    """an exported agent (``agent.rlkit`` in a run directory)"""
    env: str = ""
    """env to evaluate on (default: the env it was trained on); any registered id or gymnasium:<id>"""
    episodes: int = 10
    """complete episodes to average"""
    mode: str = "deterministic"
    """deterministic | explore"""
    seed: int = 0
    """evaluation seed"""
    video: str = ""
    """write one episode as an animated GIF here (JAX-native envs, and Gymnasium envs that render rgb_array)"""

    LIMITS: ClassVar[dict] = {
        "episodes": {"low": 1},
        "seed": {"low": 0},
        "mode": {"choices": ("deterministic", "explore")},
    }


@dataclass(frozen=True)
class PlotArgs:
    run_dirs: tyro.conf.Positional[tuple[str, ...]]
    """run directories, each drawn over every */metrics.jsonl inside: one curve per swept value (its seeds' mean
    and 95% bootstrap band), or one curve for a run without a sweep"""
    metric: str = "episode_return"
    """metric to plot (e.g. eval_return, loss/critic)"""
    out: str = "learning_curves.png"
    """image to write (.png; or any format matplotlib writes: .pdf, .svg, ...)"""
    title: str = ""
    """figure title"""


@dataclass(frozen=True)
class SweepArgs:
    spec: tyro.conf.Positional[str]
    """a sweep spec: a .yaml / .yml file, or a .py file defining SPEC (the format: experiments/sweep.py)"""
    engine: str = ""
    """local | ray | slurm (default: the spec's engine, else local)"""
    out: str = ""
    """the sweep directory (default: the spec's out)"""
    workers: int = 0
    """local engine: trials at once (0: the spec's engine_options.workers, else 1)"""
    address: str = ""
    """ray engine: the cluster's host:port or auto (default: the spec's, else a local Ray instance)"""
    dry_run: bool = False
    """validate the spec and list its trials with their status; start nothing"""

    LIMITS: ClassVar[dict] = {"engine": {"choices": ("local", "ray", "slurm")}, "workers": {"low": 0}}


@dataclass(frozen=True)
class ReportArgs:
    sweep_dir: tyro.conf.Positional[str]
    """a directory written by `rlkit sweep` (its out)"""
    metric: str = ""
    """the score: each run's last value of it (default eval_return, or episode_return without evaluations)"""
    target: float | None = None
    """γ of the optimality gap (the score counted as solved); no gap column without it"""
    compare: tuple[str, ...] = ()
    """pairs A B (A2 B2 ...) of config labels, or parts naming one config: the probability that A improves on B"""
    normalize: tuple[str, ...] = ()
    """ENV=LOW,HIGH for every env of the sweep: adds a table across envs on normalized scores"""
    reps: int = 2000
    """bootstrap resamples"""
    seed: int = 0
    """bootstrap seed (the same trials give the same report)"""
    out: str = ""
    """output directory (default SWEEP_DIR/report)"""

    LIMITS: ClassVar[dict] = {"reps": {"low": 100}, "seed": {"low": 0}}


# ================================================================================================ the command line
def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


_POSITIONAL = typing.get_args(tyro.conf.Positional[int])[1]  # the marker tyro.conf.Positional adds


def _unwrap(hint):
    """``(type, positional)`` with ``Annotated`` markers taken off."""
    positional = False
    while typing.get_origin(hint) is Annotated:
        hint, *markers = typing.get_args(hint)
        positional |= any(m is _POSITIONAL for m in markers)
    return hint, positional


def _value_kind(hint) -> tuple[str, Any]:
    """How a flag of type ``hint`` takes values: ``("switch", None)``, ``("one", T)``, ``("many", T)``,
    ``("optional-many", T)`` (``tuple[T, ...] | None``), ``("choice", values)`` or ``("other", None)``."""
    hint, _ = _unwrap(hint)
    origin = typing.get_origin(hint)
    if hint is bool:
        return "switch", None
    if hint in (int, float, str):
        return "one", hint
    if origin is Literal:
        return "choice", typing.get_args(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis and args[0] in (int, float, str):
            return "many", args[0]
        return "other", None
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(rest) == 1:
            kind, elem = _value_kind(rest[0])
            if kind == "many":
                return "optional-many", elem
            if kind == "one":
                return "optional-one", elem
    return "other", None


_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string"}


def _convert(flag: str, value: str, elem) -> None:
    if elem is str:
        return
    try:
        elem(value)
    except ValueError:
        raise UsageError(f"{flag} expects {_TYPE_WORDS[elem]}, got {value!r}") from None


def _looks_like_flag(token: str) -> bool:
    if token.startswith("--"):
        return True
    if token.startswith("-") and len(token) > 1:
        try:
            float(token)  # a negative number is a value
        except ValueError:
            return True
    return False


@dataclass
class _Flags:
    kinds: dict[str, tuple[str, Any]]  # "--flag" -> value kind
    switches: set[str]  # "--flag" of every bool (also "--no-flag")
    positionals: list[tuple[str, str, bool]]  # (field, kind "one" | "many", required)


def flags_of(classes: Iterable[type]) -> _Flags:
    """The flags ``tyro`` makes for the fields of ``classes`` (nested under ``tyro.conf.OmitArgPrefixes``)."""
    flags = _Flags({}, set(), [])
    for cls in classes:
        hints = typing.get_type_hints(cls, include_extras=True)
        for f in dataclasses.fields(cls):
            kind = _value_kind(hints[f.name])
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if _unwrap(hints[f.name])[1]:
                flags.positionals.append((f.name, kind[0], required))
                continue
            flags.kinds[flag_name(f.name)] = kind
            if kind[0] == "switch":
                flags.switches.add(flag_name(f.name))
    return flags


def check_argv(
    argv: Sequence[str],
    classes: Iterable[type],
    prog: str,
    *,
    help_hint: str = "",
    elsewhere: dict | None = None,
) -> None:
    """Raise ``UsageError`` (one line) for the first token tyro would reject: an unknown flag, a missing value, a
    value that does not convert to the field's type, a switch given a value, a missing or extra positional.

    ``elsewhere`` maps flags that exist for other choices (e.g. another agent's config) to where they do."""
    if "-h" in argv or "--help" in argv:  # tyro prints the help and exits
        return
    flags = flags_of(classes)
    help_hint = help_hint or f"{prog} --help"
    positionals: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            positionals += argv[i + 1 :]
            break
        if not _looks_like_flag(token):
            positionals.append(token)
            i += 1
            continue
        name, has_value, inline = token.partition("=")
        flag = "--" + name.lstrip("-").replace("_", "-")
        if not name.startswith("--"):
            flag = name
        base = "--" + flag[len("--no-") :] if flag.startswith("--no-") else None
        if flag in flags.switches or base in flags.switches:
            if has_value:
                shown = base or flag
                raise UsageError(
                    f"{shown} is a switch and takes no value (give {shown} or --no-{shown[2:]}), got {token!r}"
                )
            i += 1
            continue
        if flag not in flags.kinds:
            where = (elsewhere or {}).get(flag)
            if where:
                raise UsageError(
                    f"unrecognized flag {flag} here: {flag} is {where}; `{help_hint}` lists the flags"
                )
            close = difflib.get_close_matches(flag, [*flags.kinds, *flags.switches], n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise UsageError(f"unrecognized flag {flag}{hint} (`{help_hint}` lists the flags)")
        kind, elem = flags.kinds[flag]
        if has_value:
            values, i = [inline], i + 1
        elif kind in ("one", "optional-one", "choice"):
            take = i + 1 < len(argv) and not _looks_like_flag(argv[i + 1])
            values, i = argv[i + 1 : i + 1 + take], i + 1 + take
        else:  # a tuple: every value up to the next flag
            j = i + 1
            while j < len(argv) and not _looks_like_flag(argv[j]):
                j += 1
            values, i = list(argv[i + 1 : j]), j
        if kind in ("one", "optional-one", "choice") and len(values) != 1:
            if kind == "choice":
                what = "one of " + ", ".join(map(str, elem))
            else:
                what = _TYPE_WORDS.get(elem, "a value")
            raise UsageError(f"{flag} expects {what}, got none")
        if kind == "choice" and values[0] not in [str(c) for c in elem]:
            raise UsageError(
                f"{flag} {values[0]!r} is not allowed; choose one of {', '.join(map(str, elem))}"
            )
        if kind in ("optional-many", "optional-one") and values == ["None"]:
            continue
        if kind in ("one", "many", "optional-many", "optional-one"):
            for v in values:
                _convert(flag, v, elem)
    names = flags.positionals
    if not names and positionals:
        raise UsageError(f"unexpected argument {positionals[0]!r} (`{help_hint}` lists the flags)")
    if names:
        field, kind, required = names[0]
        label = field.upper()
        if required and not positionals:
            raise UsageError(f"missing {label} (`{help_hint}` says what it is)")
        if kind == "one" and len(positionals) > 1:
            raise UsageError(f"unexpected argument {positionals[1]!r}: {prog} takes one {label}")


def check_values(args, limits: dict, *, what: str = "") -> None:
    """``limits``: field -> ``{"low": x}``, ``{"high": x}``, ``{"choices": (...)}``; one line per violation."""
    for name, limit in limits.items():
        value = getattr(args, name)
        flag = flag_name(name)
        if "choices" in limit and value not in limit["choices"]:
            raise UsageError(f"{flag} {value!r} is not allowed; choose one of {', '.join(limit['choices'])}")
        if "low" in limit and value < limit["low"]:
            raise UsageError(f"{flag} {value!r} is out of range: {name} must be >= {limit['low']}")
        if "high" in limit and value > limit["high"]:
            raise UsageError(f"{flag} {value!r} is out of range: {name} must be <= {limit['high']}")


def _tyro_message(text: str) -> str:
    """The message of a tyro error box (the lines between its title's rule and the next rule), as one line."""
    blocks: list[list[str]] = [[]]
    for raw in text.splitlines():
        line = raw.strip().strip("│╭╮╰╯").strip()
        if line and set(line) <= set("-─━ "):  # a rule between the title, the message and the help footer
            blocks.append([])
        elif line:
            blocks[-1].append(line)
    blocks = [b for b in blocks if b]
    message = blocks[1] if len(blocks) > 1 else blocks[0] if blocks else ["could not parse the arguments"]
    return " ".join(message)


def parse_cli(cls, argv: Sequence[str], prog: str, **kwargs):
    """``tyro.cli(cls, args=argv, ...)`` that never prints a box: ``--help`` prints tyro's help, any parse error
    tyro still finds after ``check_argv`` becomes a ``UsageError`` with tyro's message as one line."""
    argv = list(argv)
    if "-h" in argv or "--help" in argv:
        return tyro.cli(cls, args=argv, prog=prog, **kwargs)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
            return tyro.cli(cls, args=argv, prog=prog, **kwargs)  # its box goes to `captured`
    except SystemExit as exit_:
        if exit_.code in (0, None):
            raise
        raise UsageError(f"{_tyro_message(captured.getvalue())} (`{prog} --help` lists the flags)") from None


# ================================================================================================ eval
def _check_env_id(env_id: str) -> None:
    import envs
    from envs import registry

    if env_id.startswith(registry.GYMNASIUM_PREFIX):
        registry.check_gymnasium_id(env_id[len(registry.GYMNASIUM_PREFIX) :])
    else:
        envs.registry.lookup(env_id)


def _check_output(flag: str, path: str, suffixes: Sequence[str]) -> None:
    if Path(path).suffix.lower() not in suffixes:
        raise UsageError(f"{flag} {path!r}: the file name must end in {' or '.join(suffixes)}")
    if Path(path).is_dir():
        raise UsageError(f"{flag} {path!r} is a directory; give a file name")
    Path(path).parent.mkdir(parents=True, exist_ok=True)


def evaluate(args: EvalArgs) -> dict:
    import jax

    import envs
    from envs import registry
    from rlkit import conditioning
    from rlkit.export import agent_conditioning, agent_env, load_agent, trained_env_id

    check_values(args, EvalArgs.LIMITS)
    if args.video:
        _check_output("--video", args.video, (".gif",))
    trained = trained_env_id(args.agent_file)  # a missing file, a directory, a non-agent file: one line here
    if args.env:
        env_id = args.env
        _check_env_id(env_id)
    elif trained in envs.registered_ids():
        env_id = trained
    else:  # trained through the Gymnasium bridge: its spec id is the Gymnasium id
        env_id = registry.GYMNASIUM_PREFIX + trained
        try:
            _check_env_id(env_id)
        except envs.UnknownEnvError:
            raise UsageError(
                f"{args.agent_file} was trained on {trained!r}, which is neither a registered env nor a Gymnasium "
                "id; pass --env with the env to evaluate on"
            ) from None
    if env_id.startswith(registry.GYMNASIUM_PREFIX):
        from rlkit.host_loop import evaluate_host

        if args.video:
            _check_renders(env_id)
        cond = agent_conditioning(args.agent_file)
        if cond is not None and args.video:
            raise UsageError(
                f"--video is not available for a conditioned agent ({args.agent_file}) on {env_id}"
            )
        with envs.make(env_id) as gym_env:
            spec = gym_env.spec if cond is None else conditioning.conditioned_spec(gym_env.spec, cond[0])
            agent, state = load_agent(args.agent_file, spec)
            prior, every = cond if cond is not None else (None, 0)
            result = evaluate_host(
                agent, state, gym_env, episodes=args.episodes, seed=args.seed, mode=args.mode, prior=prior,
                resample_every=every,
            )  # fmt: skip
        if args.video:
            result["video"] = record_video_host(
                env_id, agent, state, args.video, seed=args.seed, mode=args.mode
            )
    else:
        from rlkit.evaluation import evaluate_policy
        from rlkit.rollout import evaluation_env, wrap_for_rollout

        # a skill- or goal-conditioned agent: the env shows it z (or its goal), as in training; evaluation plays
        # the wrapper's evaluation env (a goal agent's eval_goal)
        env = evaluation_env(agent_env(args.agent_file, envs.make(env_id)))
        agent, state = load_agent(args.agent_file, env.spec)
        out = jax.jit(
            lambda s, k: evaluate_policy(
                wrap_for_rollout(env), agent, s, k, num_episodes=args.episodes, mode=args.mode
            )
        )(state, jax.random.key(args.seed))
        result = {k: float(v) for k, v in out.items()}
        if args.video:
            result["video"] = record_video(env, agent, state, args.video, seed=args.seed, mode=args.mode)
    print(
        f"{Path(args.agent_file)} on {env_id}: "
        + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items())
    )
    return result


def record_video(
    env, agent, state, path: str, *, seed: int = 0, mode: str = "deterministic", fps: int = 30
) -> str:
    """One episode rendered on the device (``env.render`` vmapped over the scanned states), saved as a GIF."""
    import jax
    import numpy as np

    horizon = env.spec.max_episode_steps or 200

    @jax.jit
    def rollout(key):
        obs, s = env.reset(key)

        def step(carry, k):
            obs, s = carry
            a = agent.act(state, obs, k, mode)
            obs, s2, *_ = env.step(k, s, a)
            return (obs, s2), s

        _, states = jax.lax.scan(step, (obs, s), jax.random.split(key, horizon))
        return jax.vmap(env.render)(states)

    return _save_gif(np.asarray(rollout(jax.random.key(seed))), path, fps)


def _save_gif(frames, path: str, fps: int) -> str:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames[:: max(1, len(frames) // 150)]]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


def _check_renders(env_id: str) -> None:
    """One line, before anything runs, if a Gymnasium env cannot render ``rgb_array`` frames."""
    import gymnasium

    gym_id = env_id.split(":", 1)[1]
    env = gymnasium.make(gym_id)
    try:
        modes = list(env.metadata.get("render_modes") or [])
    finally:
        env.close()
    if "rgb_array" not in modes:
        raise UsageError(
            f"--video: Gymnasium env {gym_id!r} cannot render frames: its render_modes are {modes}, and a GIF needs "
            "'rgb_array'"
        )


def record_video_host(
    env_id: str, agent, state, path: str, *, seed: int = 0, mode: str = "deterministic", fps: int = 30
) -> str:
    """One episode of a Gymnasium env (made with ``render_mode="rgb_array"``), stepped on the host with the agent's
    actions and saved as a GIF: the frame after reset and after every step until the episode ends."""
    import gymnasium
    import jax
    import numpy as np

    import envs

    _check_renders(env_id)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame draws off-screen: no display is opened
    act = jax.jit(jax.vmap(lambda o, k: agent.act(state, o, k, mode)))
    key = jax.random.key(seed)
    with envs.make(env_id, gym_kwargs={"render_mode": "rgb_array"}) as env:
        limit = env.spec.max_episode_steps or 1000
        try:
            obs = env.reset(seed=seed)
            frames = [env.render()[0]]
            for _ in range(limit):
                key, k = jax.random.split(key)
                obs, _, terminated, truncated, _ = env.step(np.asarray(act(obs, jax.random.split(k, 1))))
                if terminated[0] or truncated[0]:  # the frame now shows the auto-reset's new episode
                    break
                frames.append(env.render()[0])
        except gymnasium.error.DependencyNotInstalled as err:
            raise UsageError(f"--video: {env_id} cannot render here: {' '.join(str(err).split())}") from None
    return _save_gif(np.stack(frames), path, fps)


# ================================================================================================ plot
def plot(args: PlotArgs) -> str:
    import matplotlib.pyplot as plt

    from rlkit.plots import load_run_dir_curves, plot_learning_curves

    formats = tuple("." + f for f in plt.figure().canvas.get_supported_filetypes())
    plt.close("all")
    _check_output("--out", args.out, formats)
    curves = {}
    for run_dir in args.run_dirs:
        if not Path(run_dir).is_dir():
            raise UsageError(
                f"{run_dir} is not a directory (give run directories: the --log-dir of rlkit train)"
            )
        label, skipped = Path(run_dir).resolve().name, []
        for group, curve in load_run_dir_curves(run_dir, args.metric, skipped).items():
            curves[f"{label}: {group}" if group else label] = curve
        for group in skipped:
            print(
                f"note: {label}: {group or 'its runs'} never logged {args.metric!r}; not drawn",
                file=sys.stderr,
            )
    out = plot_learning_curves(curves, args.out, title=args.title, ylabel=args.metric.replace("_", " "))
    print(f"wrote {out}")
    return out


# ================================================================================================ entry point
# ================================================================================================ sweep, report
def sweep(args: SweepArgs) -> dict:
    """``rlkit sweep``: validate the spec's trials, then launch the unfinished ones (``experiments.sweep``)."""
    from experiments.sweep import launch, load_spec

    check_values(args, {k: v for k, v in SweepArgs.LIMITS.items() if k != "engine" or args.engine})
    options = {"workers": args.workers or None, "address": args.address or None}
    return launch(load_spec(args.spec), engine=args.engine or None, out=args.out or None, dry_run=args.dry_run,
                  options={k: v for k, v in options.items() if v is not None})  # fmt: skip


def report(args: ReportArgs) -> dict:
    """``rlkit report``: one table over a sweep's finished trials (``experiments.report``)."""
    from experiments.report import report as write_report

    check_values(args, ReportArgs.LIMITS)
    if len(args.compare) % 2:
        raise UsageError(f"--compare takes pairs A B; got {len(args.compare)} labels {list(args.compare)}")
    pairs = [list(args.compare[i : i + 2]) for i in range(0, len(args.compare), 2)]
    return write_report(args.sweep_dir, metric=args.metric or None, target=args.target, compare=pairs,
                        normalize=list(args.normalize), reps=args.reps, seed=args.seed, out=args.out or None)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0)
    check_command(argv[0], COMMANDS, "rlkit")
    command, rest = argv[0], argv[1:]
    if command in ("envs", "agents"):  # listings: no arguments
        if rest:
            print(
                f"rlkit {command}: error: unexpected argument {rest[0]!r} (rlkit {command} takes none)",
                file=sys.stderr,
            )
            raise SystemExit(2)
        if command == "envs":
            import envs

            print(envs.describe())
        else:
            print(describe_agents())
        return
    if command == "demos":
        from experiments.demos import main as demos_main

        demos_main(rest)
        return
    if command == "train":
        from experiments.train import main as train_main

        train_main(rest)
        return
    from experiments.engines import SweepError

    cls, action = {"eval": (EvalArgs, evaluate), "plot": (PlotArgs, plot), "sweep": (SweepArgs, sweep),
                   "report": (ReportArgs, report)}[command]  # fmt: skip
    prog = f"rlkit {command}"
    try:
        check_argv(rest, [cls], prog)
        action(parse_cli(cls, rest, prog))
    except (ValueError, OSError, KeyError) as err:
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        raise SystemExit(2) from None
    except SweepError as err:  # trials failed; the finished ones are kept
        print(f"{prog}: {one_line(err)}", file=sys.stderr)
        raise SystemExit(1) from None


def describe_agents() -> str:
    """The registry as a table: name, family, loop, inputs, description (what ``rlkit agents`` prints)."""
    from rlkit import registry

    rows = [
        (e.name, e.family, e.loop + ("" if e.host_pieces is not None else ", JAX envs only"),
         ", ".join(f"--{i}" for i in e.inputs), e.description)
        for e in registry.entries().values()
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows)


def check_command(word: str, commands: Sequence[str], prog: str) -> None:
    """Exit 2 with one line (and the closest command) unless ``word`` is one of ``commands``."""
    if word in commands:
        return
    close = difflib.get_close_matches(word, commands, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    print(f"{prog}: error: unknown command {word!r}{hint} (commands: {', '.join(commands)})", file=sys.stderr)
    raise SystemExit(2)


def one_line(err: BaseException) -> str:
    """An error's message as one line (``KeyError`` unquoted, ``OSError`` without its errno)."""
    if isinstance(err, OSError) and err.strerror and err.filename is not None:
        text = f"{err.filename}: {err.strerror}"
    else:
        text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(text.split()) or type(err).__name__


if __name__ == "__main__":
    main()
