"""Checkpoints of a whole training state with orbax: save every N chunks, keep the last K, restore the latest.

A checkpoint is one orbax step directory holding the state pytree (``StandardSave``) and the run's config as
JSON (``JsonSave``), so a checkpoint alone is enough to rebuild and resume a run. Orbax writes each step to a
temporary directory and renames it when complete, so a run killed while saving resumes from the last *complete*
checkpoint — that is why we use it rather than ``np.savez``.

Typed PRNG keys (``jax.random.key``) are not array data orbax can store: they are saved as their ``key_data``
and wrapped back on restore, using the target structure to know which leaves were keys. Restoring needs a target
(an example state, e.g. a fresh ``init``), because without it optax's NamedTuples come back as plain containers.

Deliberately not here: what goes *into* the state (the training loop decides), and cross-host coordination
beyond what orbax does itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


def _is_typed_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _keys_to_data(tree):
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_typed_key(x) else x, tree)


class Checkpointer:
    """``save(step, state, config)`` / ``restore(target)`` over ``directory``, keeping the last ``max_to_keep``."""

    def __init__(self, directory: str | os.PathLike, *, max_to_keep: int = 3):
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        )

    def save(self, step: int, state: Any, config: dict | None = None, *, wait: bool = True) -> None:
        args = {"state": ocp.args.StandardSave(_keys_to_data(state))}
        if config is not None:
            args["config"] = ocp.args.JsonSave(config)
        self._manager.save(int(step), args=ocp.args.Composite(**args))
        if wait:
            self._manager.wait_until_finished()

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def saved_config(self, step: int | None = None) -> dict | None:
        """The config saved with checkpoint ``step`` (default: the latest), without touching the state."""
        step = self.latest_step() if step is None else step
        if step is None or not (self.directory / str(step) / "config").exists():
            return None
        return self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]

    def restore(self, target: Any, step: int | None = None) -> tuple[Any, dict | None]:
        """Restore ``(state, config)`` at ``step`` (default: the latest complete one) into ``target``'s structure."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no complete checkpoint in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _keys_to_data(target))
        has_config = (self.directory / str(step) / "config").exists()
        args = {"state": ocp.args.StandardRestore(abstract)}
        if has_config:
            args["config"] = ocp.args.JsonRestore()
        restored = self._manager.restore(step, args=ocp.args.Composite(**args))
        state = jax.tree.map(
            lambda t, x: jax.random.wrap_key_data(x, impl=jax.random.key_impl(t)) if _is_typed_key(t) else x,
            target,
            restored["state"],
        )
        return state, restored["config"] if has_config else None

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
