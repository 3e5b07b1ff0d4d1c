"""The one agent registry: name → what builds, validates, trains and exports an agent.

The CLI (``rlkit train --agent X``, ``--help``, the list of agents), export / load (``rlkit.export``) and the
docs all read this table, so adding an algorithm touches it once: ``register(AgentEntry(...))`` in
``agents/registry.py`` (bundled agents) or in any installed package that declares an ``rlkit.agents`` entry
point (``[project.entry-points."rlkit.agents"] myalgo = "mypkg.registry"``; importing the module registers it).

The core never imports ``agents/``: the bundled table is found by module name on first use, the same way
``envs.registry`` finds envs by entry-point strings.

Deliberately not here: configs' defaults per task (the CLI's ``experiments.train.task_defaults``), and building
envs (``envs.registry``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from rlkit.configs import ConfigError

BUNDLED = "agents.registry"  # the module that registers the agents shipped with rlkit
ENTRY_POINT_GROUP = "rlkit.agents"
LOOPS = ("off_policy", "on_policy", "offline")


@dataclass(frozen=True)
class AgentEntry:
    """One algorithm.

    ``make_trainer(config, env, params=None, **inputs)`` builds the on-device ``Trainer`` (and validates);
    ``make_agent(config, spec)`` the bare ``Agent`` (export / load, the host loop); ``validate(config, spec,
    **inputs)`` refuses a config, env or input that cannot work, in one line, before anything compiles.
    ``inputs`` names what a run must hand the trainer besides the env (``"demos"``: a ``DemoStore``);
    ``host_pieces(config, spec, **inputs)`` returns the keyword arguments of ``rlkit.host_loop.train_host``
    beyond the agent (a data source ``sample``, transition ``extras``, a conditioning ``prior``) — ``None``
    when the agent cannot run through the Gymnasium host loop (say why in ``host_note``). ``condition(config) ->
    (prior, resample_every)`` for agents that act on ``concat(obs, z)``: evaluation, export and loading wrap the env
    the same way training did (``rlkit.conditioning``). ``wrap_env(config, env) -> Environment`` instead, for
    agents whose conditioning needs the env (goal-conditioned agents: goals drawn from the env, success measured
    at ``eval_goal``): the env they act on, built from the plain env (evaluation plays its ``evaluation_env``)."""

    name: str
    config_cls: type
    make_agent: Callable[..., Any]
    make_trainer: Callable[..., Any]
    description: str
    family: str = "base"
    loop: str = "off_policy"
    validate: Callable[..., None] | None = None
    inputs: tuple[str, ...] = ()
    host_pieces: Callable[..., dict] | None = field(default=None)
    host_note: str = ""
    condition: Callable[[Any], tuple[Any, int]] | None = None
    wrap_env: Callable[[Any, Any], Any] | None = None
    score: str = "eval_return"
    """the evaluation metric that summarizes a run (``summary.json``, ``learning_curve.png``, ``rlkit report``'s
    default): the return, or for goal-reaching agents the success rate ``eval_success_any``"""

    def __post_init__(self):
        if self.loop not in LOOPS:
            raise ValueError(f"AgentEntry {self.name!r}: loop={self.loop!r}; choose one of {list(LOOPS)}")


_ENTRIES: dict[str, AgentEntry] = {}
_loaded = False


def register(entry: AgentEntry) -> None:
    """Add an algorithm; a second entry with the same name raises (names are how files refer to agents)."""
    if not isinstance(entry, AgentEntry):
        raise TypeError(f"register takes an AgentEntry, got {type(entry).__name__}")
    old = _ENTRIES.get(entry.name)
    if old is not None and old != entry:
        raise ValueError(f"agent {entry.name!r} is already registered (by {old.make_agent.__module__})")
    _ENTRIES[entry.name] = entry


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    try:
        importlib.import_module(BUNDLED)
    except ModuleNotFoundError as err:  # rlkit used without its agents/ package: only plugins
        if err.name not in ("agents", BUNDLED):
            raise
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        point.load()


def entries() -> dict[str, AgentEntry]:
    """Every registered agent, by name (bundled ones first, in registration order)."""
    _load()
    return dict(_ENTRIES)


def get(name: str) -> AgentEntry:
    """The entry for ``name``; an unknown name raises one line listing the registered ones."""
    table = entries()
    if name not in table:
        raise ConfigError(f"agent={name!r} is not registered; choose from {sorted(table)}")
    return table[name]
