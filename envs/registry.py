"""The env registry: ``envs.make("pendulum")``, ``envs.make("gymnasium:Ant-v5")``, ``envs.make("brax:ant")``,
``envs.registered_ids()``.

Entries are registered by import path (``"envs.classic.pendulum:Pendulum"``) so that importing ``envs`` stays
cheap and an env module is imported only when it is made. ``make`` wraps JAX-native envs in ``TimeLimit`` (their
``params.max_episode_steps``), like Gymnasium's registration does; an id prefixed ``gymnasium:`` returns the
host-side bridge to that Gymnasium env instead, and ``brax:`` / ``playground:`` the on-device Brax / MuJoCo Playground
env (``envs.brax_bridge``), wrapped in ``TimeLimit`` like the native ones. An unknown id raises ``UnknownEnvError`` naming the closest ids
(for ``gymnasium:`` ids: Gymnasium's own message and the closest ids in ``gymnasium.registry``).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from envs.core import Environment

GYMNASIUM_PREFIX = "gymnasium:"


class UnknownEnvError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class EnvEntry:
    id: str
    entry_point: str | Callable[..., Environment]
    description: str = ""

    def load(self) -> Callable[..., Environment]:
        if callable(self.entry_point):
            return self.entry_point
        module, _, attr = self.entry_point.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


_REGISTRY: dict[str, EnvEntry] = {}


def register(id: str, entry_point: str | Callable[..., Environment], description: str = "") -> None:
    """Register a JAX-native env factory under ``id`` (re-registering an id replaces it)."""
    if id.startswith((GYMNASIUM_PREFIX, "brax:", "playground:")):
        raise ValueError(f"ids starting with {id.partition(':')[0]!r}: are reserved for the bridges: {id!r}")
    _REGISTRY[id] = EnvEntry(id, entry_point, description)


def registered_ids() -> list[str]:
    return sorted(_REGISTRY)


def describe() -> str:
    """One line per registered env (for ``rlkit envs`` and error messages)."""
    width = max(map(len, _REGISTRY), default=0)
    return "\n".join(f"{i:<{width}}  {_REGISTRY[i].description}" for i in registered_ids())


def lookup(id: str) -> EnvEntry:
    if id.startswith(("brax:", "playground:")):  # Brax / MuJoCo Playground envs through envs.brax_bridge
        from envs import brax_bridge

        brax_bridge.check_id(id)
        return EnvEntry(id, lambda **kwargs: brax_bridge.JaxLibraryEnv(id, **kwargs), "on-device MuJoCo env")
    if id in _REGISTRY:
        return _REGISTRY[id]
    close = difflib.get_close_matches(id, list(_REGISTRY), n=3, cutoff=0.5)
    if id in _gymnasium_ids():  # a Gymnasium id typed without the prefix
        close.append(GYMNASIUM_PREFIX + id)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownEnvError(
        f"unknown env id {id!r}.{hint} Registered: {', '.join(registered_ids())}; "
        f"any Gymnasium env as '{GYMNASIUM_PREFIX}<id>' (e.g. '{GYMNASIUM_PREFIX}Pendulum-v1'); Brax and MuJoCo "
        "Playground envs on device as 'brax:<name>' / 'playground:<name>' (e.g. 'brax:ant')."
    )


def _gymnasium_ids() -> list[str]:
    try:
        import gymnasium
    except ImportError:  # pragma: no cover - gymnasium is a dependency
        return []
    return list(gymnasium.registry)


def check_gymnasium_id(gym_id: str) -> None:
    """Raise ``UnknownEnvError`` (Gymnasium's own message and the closest registered Gymnasium ids, one line) if
    ``gym_id`` is not a registered Gymnasium id. Nothing is made or stepped."""
    import gymnasium

    try:
        gymnasium.spec(gym_id)
    except gymnasium.error.Error as err:
        message = " ".join(str(err).split())  # Gymnasium's message, as one line
        close = difflib.get_close_matches(gym_id, _gymnasium_ids(), n=3, cutoff=0.5)
        hint = (
            f" Closest registered Gymnasium ids: {', '.join(repr(GYMNASIUM_PREFIX + c) for c in close)}."
            if close
            else f" `python -c 'import gymnasium; gymnasium.pprint_registry()'` lists the {len(_gymnasium_ids())} "
            "registered ones."
        )
        end = "" if message.endswith((".", "?", "!")) else "."
        raise UnknownEnvError(
            f"unknown Gymnasium env id {GYMNASIUM_PREFIX + gym_id!r}: {message}{end}{hint}"
        ) from None


def check_id(id: str) -> None:
    """Raise ``UnknownEnvError`` (one line, the closest ids) unless ``id`` can be made — a registered id, a
    ``gymnasium:`` id Gymnasium knows, or an installed Brax / Playground env — without making it."""
    if id.startswith(GYMNASIUM_PREFIX):
        check_gymnasium_id(id[len(GYMNASIUM_PREFIX) :])
    else:
        lookup(id)


def action_space_of(id: str):
    """The action space (``envs.spaces``) of a registered env or ``gymnasium:<id>``, without stepping it (a
    Gymnasium env is made once, its space read and translated, and closed)."""
    if id.startswith(GYMNASIUM_PREFIX):
        import gymnasium

        from envs.gymnasium_bridge import _translate_action_space

        check_gymnasium_id(id[len(GYMNASIUM_PREFIX) :])
        env = gymnasium.make(id[len(GYMNASIUM_PREFIX) :])
        try:
            return _translate_action_space(env.action_space, id)[0]
        finally:
            env.close()
    return make(id).spec.action_space


def make(id: str, *, time_limit: bool = True, **kwargs):
    """Make a registered env.

    Args:
        id: a registered id, or ``"gymnasium:<Gymnasium id>"`` for the host-side bridge.
        time_limit: wrap a JAX-native env in ``TimeLimit`` (its ``params.max_episode_steps``).
        **kwargs: the env's constructor options and default-param overrides (unknown names raise), or for a
            Gymnasium id the bridge's options (``num_envs``, ``asynchronous``, ``gym_kwargs``).
    """
    if id.startswith(GYMNASIUM_PREFIX):
        from envs.gymnasium_bridge import GymnasiumVectorEnv

        check_gymnasium_id(id[len(GYMNASIUM_PREFIX) :])
        return GymnasiumVectorEnv(id[len(GYMNASIUM_PREFIX) :], **kwargs)
    env = lookup(id).load()(**kwargs)
    if time_limit:
        from envs.wrappers import TimeLimit

        env = TimeLimit(env)
    return env


# The JAX-native envs of this package. Keep ids lower-case with dashes.
register("pendulum", "envs.classic:Pendulum", "Gymnasium Pendulum-v1 (swing-up, 200 steps)")
register("cartpole", "envs.classic:CartPole", "Gymnasium CartPole-v1 (balance, discrete, 500 steps)")
register(
    "mountain-car-continuous",
    "envs.classic:MountainCarContinuous",
    "Gymnasium MountainCarContinuous-v0 (sparse goal, 999 steps)",
)
register("acrobot", "envs.classic:Acrobot", "Gymnasium Acrobot-v1 (swing-up, discrete, 500 steps)")
register(
    "point-room", "envs.point_maze:PointMaze.room", "2-D point in an empty walled room (skill discovery)"
)
register("point-maze", "envs.point_maze:PointMaze.maze", "2-D point in a maze with walls (skill discovery)")
register(
    "point-spiral",
    "envs.point_maze:PointMaze.spiral",
    "2-D point at the centre of sgcrl's 11x11 spiral corridor; its goal at the far end (goal reaching)",
)
register("push2d", "envs.push2d:Push2D", "planar gripper pushes a block to a goal; vector reward")
