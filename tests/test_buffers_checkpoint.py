"""A buffer's whole state survives an orbax checkpoint bit-exactly: same arrays, same next sample."""

from __future__ import annotations

import jax
import numpy as np
import orbax.checkpoint as ocp

from rlkit.buffers import make_replay_buffer


def test_buffer_state_round_trips_through_orbax(tmp_path):
    ex = {
        "obs": np.zeros(3, np.float32),
        "next_obs": np.zeros(3, np.float32),
        "reward": np.zeros(2, np.float32),
        "terminated": np.bool_(False),
        "truncated": np.bool_(False),
    }
    buf = make_replay_buffer(ex, 12, 2)
    state = buf.init()
    rng = np.random.default_rng(0)
    add = jax.jit(buf.add)
    for _ in range(9):  # wraps: 6 rows per env
        step = jax.tree.map(lambda x: rng.normal(size=(2, *np.shape(x))).astype(np.asarray(x).dtype), ex)
        step["terminated"] = rng.random(2) < 0.3
        step["truncated"] = rng.random(2) < 0.2
        state = add(state, step)
    manager = ocp.CheckpointManager(
        tmp_path / "ckpt", options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True)
    )
    manager.save(9, args=ocp.args.StandardSave(state))
    manager.wait_until_finished()
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    restored = manager.restore(9, args=ocp.args.StandardRestore(abstract))
    manager.close()
    assert type(restored) is type(state)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), state, restored)
    key = jax.random.key(4)
    a = buf.sample_nstep(state, key, 16, 3, 0.9)
    b = buf.sample_nstep(restored, key, 16, 3, 0.9)
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)
