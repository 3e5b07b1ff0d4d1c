"""Every code block of README.md, run: a README that shows a call is a README whose call works.

- ```python blocks run verbatim, in README order, with one namespace per ``##`` section (its ``###`` parts
  included), so a section reads like one notebook; each section runs in its own temporary directory. A block
  whose earlier blocks ran in another process (``pytest -n`` may split a section over workers) runs them first,
  so it is correct anywhere, at the price of running them twice; a block after a failed one is skipped, naming
  the block that failed.
- ```bash blocks hold CLI lines. Running them would take minutes, so each line is checked instead: ``make X``
  against the Makefile's targets; ``rlkit train …`` is parsed by ``experiments.train.parse_args`` and validated
  without training (config ranges, the sweep, the env made and the agent's trainer built, which checks the agent
  against the env; for ``gymnasium:`` ids, that Gymnasium knows the id); ``rlkit eval`` / ``rlkit plot`` are
  parsed into ``experiments.cli.EvalArgs`` / ``PlotArgs``; ``python -m X`` needs module X to exist.

One test case per block, named by its nearest heading and its index under that heading (``from-python-3``), so a
failure says which block; a traceback shows README.md's own line numbers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import io
import re
import shlex
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MAKEFILE = ROOT / "Makefile"
PLACEHOLDERS = ("…", "...")


@dataclasses.dataclass(frozen=True)
class Block:
    id: str  # "<nearest heading slug>-<index under it>"
    section: str  # the ``##`` section whose namespace a python block shares
    lang: str
    code: str
    line: int  # README line of the first code line (1-based)


def slug(title: str) -> str:
    """``"Measured learning (`make reproduce`, …)"`` → ``"measured-learning"``."""
    return re.sub(r"[^a-z0-9]+", "-", title.split("(")[0].lower()).strip("-") or "top"


def readme_blocks(text: str) -> list[Block]:
    blocks, section, heading, fence = [], "", "top", None
    counts: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if fence is not None:
            if line.strip() == "```":
                lang, start, body = fence
                counts[heading] = counts.get(heading, 0) + 1
                blocks.append(Block(f"{heading}-{counts[heading]}", section, lang, "\n".join(body), start))
                fence = None
            else:
                fence[2].append(line)
            continue
        if line.startswith("```"):
            fence = (line[3:].strip().lower(), n + 1, [])
        elif m := re.match(r"(#{1,6})\s+(.*)", line):
            heading = slug(m.group(2))
            if len(m.group(1)) <= 2:
                section = m.group(2)
    assert fence is None, f"README.md: the code block opened at line {fence[1] - 1} is never closed"
    return blocks


BLOCKS = readme_blocks(README.read_text())
assert len({b.id for b in BLOCKS}) == len(BLOCKS), "two README blocks got the same test id"


# ================================================================================================ python blocks
@dataclasses.dataclass
class Section:
    """One ``##`` section's session: its blocks' globals are a module (``readme_<slug>``), as a script's are."""

    name: str
    directory: Path
    module: types.ModuleType = None
    done: set = dataclasses.field(default_factory=set)
    failed: str | None = None

    def __post_init__(self):
        # a real module, so classes a block defines can be inspected and pickled (dataclasses look them up)
        self.module = types.ModuleType(f"readme_{slug(self.name).replace('-', '_')}")
        sys.modules[self.module.__name__] = self.module

    @property
    def namespace(self) -> dict:
        return self.module.__dict__


_SECTIONS: dict[str, Section] = {}


@pytest.fixture(scope="module")
def sections(tmp_path_factory):
    def get(name: str) -> Section:
        if name not in _SECTIONS:
            _SECTIONS[name] = Section(name, tmp_path_factory.mktemp(slug(name)))
        return _SECTIONS[name]

    yield get
    for section in _SECTIONS.values():  # close what the blocks opened (Gymnasium vector envs, ...)
        for value in list(section.namespace.values()):
            if hasattr(value, "close") and type(value).__module__.split(".")[0] in ("envs", "gymnasium"):
                with contextlib.suppress(Exception):
                    value.close()
        sys.modules.pop(section.module.__name__, None)
    _SECTIONS.clear()


def run_python(block: Block, section: Section) -> None:
    # padding with newlines makes tracebacks name README.md's own lines (and show them); dont_inherit: the
    # block gets none of this file's __future__ imports, exactly as if it were pasted into a fresh script
    code = compile("\n" * (block.line - 1) + block.code, str(README), "exec", dont_inherit=True)
    exec(code, section.namespace)


# ================================================================================================ shell lines
def shell_lines(block: Block) -> list[tuple[int, str]]:
    """``(README line, command)`` for every command of a shell block (``\\`` continuations joined)."""
    out, pending, first = [], "", 0
    for n, line in enumerate(block.code.splitlines(), start=block.line):
        if not pending:
            first = n
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command, pending = pending + line, ""
        if shlex.split(command, comments=True):
            out.append((first, command))
    return out


def make_targets() -> set[str]:
    targets = re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", MAKEFILE.read_text(), re.M)
    return {t for t in targets if not t.startswith(".")}  # not .PHONY


class CommandError(AssertionError):
    """A README command line that would fail; its message says why."""


def require(ok, message: str) -> None:
    if not ok:
        raise CommandError(message)


def tyro_parse(cls, argv: list[str]):
    import tyro

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return tyro.cli(cls, args=argv)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise CommandError(f"{cls.__name__} refused {argv}: {err.getvalue().strip()}") from None
        return None  # --help


def check_train(argv: list[str]) -> None:
    import envs
    from experiments.train import parse_args, parse_sweep
    from rlkit import configs
    from rlkit.sweeps import make_runs

    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            run_args, config = parse_args(argv)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise CommandError(f"rlkit train refused {argv}: {out.getvalue().strip()}") from None
        require("--help" in argv or "-h" in argv, f"rlkit train {argv} exited without training")
        return  # --help printed
    configs.validate(config)
    for name in ("total_steps", "checkpoint_every"):
        require(getattr(run_args, name) >= 1, f"{name} must be >= 1, got {getattr(run_args, name)}")
    make_runs(config, seeds=run_args.seeds, sweep=parse_sweep(type(config), run_args.sweep))
    from rlkit import registry

    entry = registry.get(run_args.agent)
    wants_demos = (
        "demos" in entry.inputs or run_args.expert_resets > 0
    )  # resets start from demonstration states
    require(
        bool(run_args.demos) == wants_demos,
        f"--agent {entry.name} {'needs' if wants_demos else 'takes no'} --demos",
    )
    require(
        bool(run_args.expert) == ("expert" in entry.inputs),
        f"--agent {entry.name} {'needs' if 'expert' in entry.inputs else 'takes no'} --expert",
    )
    if run_args.env.startswith(envs.registry.GYMNASIUM_PREFIX):
        import gymnasium

        gymnasium.spec(run_args.env[len(envs.registry.GYMNASIUM_PREFIX) :])  # raises for an unknown id
    elif entry.validate is not None:
        entry.validate(config, envs.make(run_args.env).spec)  # checks the agent against the env


def check_command(command: str) -> None:
    from experiments import cli

    argv = shlex.split(command, comments=True)
    for mark in PLACEHOLDERS:
        require(
            mark not in command.split("#")[0],
            f"a {mark!r} placeholder: write a concrete command a reader can paste (and this test can check)",
        )
    if argv[0] == "make":
        targets = make_targets()
        missing = [t for t in argv[1:] if "=" not in t and not t.startswith("-") and t not in targets]
        require(not missing, f"the Makefile has no target {missing} (it has {sorted(targets)})")
    elif argv[0] == "rlkit":
        require(
            len(argv) > 1 and argv[1] in cli.COMMANDS, f"rlkit has no command {argv[1:2]} ({cli.COMMANDS})"
        )
        if argv[1] == "train":
            check_train(argv[2:])
        elif argv[1] == "eval":
            tyro_parse(cli.EvalArgs, argv[2:])
        elif argv[1] == "plot":
            tyro_parse(cli.PlotArgs, argv[2:])
        elif argv[1] == "sweep":
            args = tyro_parse(cli.SweepArgs, argv[2:])
            require(Path(args.spec).is_file(), f"no spec file {args.spec} in the repository")
            from experiments.sweep import expand, load_spec

            expand(load_spec(args.spec))  # the spec validates
        elif argv[1] == "report":
            tyro_parse(cli.ReportArgs, argv[2:])
        elif argv[1] == "demos":
            from experiments import demos

            sub = {"collect": demos.CollectArgs, "info": demos.InfoArgs}
            require(
                len(argv) > 2 and argv[2] in sub,
                f"rlkit demos has subcommands {sorted(sub)}, got {argv[2:3]}",
            )
            tyro_parse(sub[argv[2]], argv[3:])
        else:
            require(argv[2:] == [], f"rlkit {argv[1]} takes no arguments, got {argv[2:]}")
    elif argv[0] in ("python", "python3") and argv[1:2] == ["-m"]:
        require(importlib.util.find_spec(argv[2]) is not None, f"no module {argv[2]}")
    else:
        raise CommandError(
            f"tests/test_readme.py does not know how to check {argv[0]!r}: teach check_command"
        )


# ================================================================================================ the test
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block(block: Block, sections, monkeypatch):
    where = f"README.md:{block.line} ({block.id})"
    if block.lang in ("bash", "sh", "shell", "console"):
        failures = []  # every broken line of the block, not just the first
        for line, command in shell_lines(block):
            try:
                check_command(command)
            except Exception as err:
                failures.append(f"README.md:{line}: {command.strip()}\n    {type(err).__name__}: {err}")
        if failures:
            pytest.fail("\n".join(failures), pytrace=False)
        return
    if block.lang == "text":
        pytest.skip(f"{where} is text (output), not code")
    if block.lang != "python":
        pytest.fail(f"{where}: a ```{block.lang} block; tests/test_readme.py runs python and bash blocks")

    section = sections(block.section)
    if section.failed is not None:
        pytest.skip(f"{where} builds on {section.failed}, which failed")
    monkeypatch.chdir(section.directory)
    earlier = [b for b in BLOCKS if b.section == block.section and b.lang == "python" and b.line < block.line]
    for b in earlier:  # blocks that ran in another pytest process, or were deselected
        if b.id not in section.done:
            try:
                run_python(b, section)
            except Exception as err:
                section.failed = b.id
                pytest.fail(f"{where} builds on {b.id} (README.md:{b.line}), which failed: {err!r}")
            section.done.add(b.id)
    try:
        run_python(block, section)
    except BaseException:
        section.failed = block.id
        raise
    section.done.add(block.id)


# ================================================================================================ export_run
# The call the README's "From Python" section relies on, beyond what that section shows.
def test_export_run_refuses_a_run_outside_the_runs_in_one_line(tmp_path):
    from agents import sac
    from rlkit.export import export_run
    from rlkit.sweeps import make_runs

    config = sac.SACConfig(hidden_sizes=(8,))
    runs = make_runs(config, seeds=2, sweep={"q_lr": [1e-3, 3e-4]})
    for k in (4, -1):
        with pytest.raises(IndexError, match=rf"^run k={k} is out of range: there are 4 runs \(k = 0 … 3\)$"):
            export_run(tmp_path / "x.rlkit", None, runs, k, config=config, spec=None)
    assert not (tmp_path / "x.rlkit").exists()


def test_export_run_takes_the_swept_values_and_ppo_observation_normalizer(tmp_path):
    import jax
    import jax.numpy as jnp
    import numpy as np

    import envs
    from agents import ppo, sac
    from rlkit import running_stats
    from rlkit.export import export_run, load_agent
    from rlkit.on_policy import NORMALIZE_CLIP
    from rlkit.sweeps import make_runs
    from rlkit.training import TrainResult

    env = envs.make("pendulum")
    config = ppo.continuous_config(hidden_sizes=(8,), num_envs=2, num_steps=8, num_minibatches=1)
    runs = make_runs(config, seeds=1, sweep={"learning_rate": [1e-3, 3e-4], "gamma": [0.9]})
    ppo_agent = ppo.make_ppo(config, env.spec)
    stats = running_stats.RunningMeanStd(  # two runs with different observation statistics
        mean=jnp.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]]),
        var=jnp.array([[4.0, 1.0, 9.0], [1.0, 2.0, 3.0]]),
        count=jnp.array([10.0, 20.0]),
    )
    # what train's result holds for 2 runs (no training needed to check the plumbing)
    state = types.SimpleNamespace(
        agent_state=jax.vmap(ppo_agent.init)(jax.random.split(jax.random.key(0))), obs_stats=stats
    )
    result = TrainResult(state, {})

    path = export_run(tmp_path / "ppo.rlkit", result, runs, 1, config=config, spec=env.spec)
    agent, loaded = load_agent(path, env.spec)  # its act normalizes raw observations itself
    assert agent.config == config.replace(learning_rate=3e-4, gamma=0.9)  # exact Python values
    obs = np.array([0.3, -0.2, 5.0], np.float32)
    run1, stats1 = jax.tree.map(lambda x: x[1], (state.agent_state, stats))
    expected = ppo_agent.act(
        run1, running_stats.normalize(stats1, obs, clip=NORMALIZE_CLIP), jax.random.key(0), "deterministic"
    )
    np.testing.assert_allclose(
        agent.act(loaded, obs, jax.random.key(0), "deterministic"), expected, rtol=1e-6
    )

    with pytest.raises(ValueError, match="not made from this config: PPOConfig.hidden_sizes"):
        export_run(
            tmp_path / "x.rlkit", result, runs, 0, config=config.replace(hidden_sizes=(4,)), spec=env.spec
        )
    with pytest.raises(ValueError, match="not made from this config: PPOConfig.ent_coef"):
        export_run(tmp_path / "x.rlkit", result, runs, 0, config=config.replace(ent_coef=0.5), spec=env.spec)
    with pytest.raises(ValueError, match="runs were made from a PPOConfig"):
        export_run(tmp_path / "x.rlkit", result, runs, 0, config=sac.SACConfig(), spec=env.spec)
