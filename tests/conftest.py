"""Test-session setup: one JAX persistent compilation cache for all of the session's processes.

Many tests compile the same program in several processes: the two xdist workers, and the CLI subprocesses of
the resume, sweep, report and multi-process tests (a killed run and its resume compile what the reference run
compiled). A compilation cache in a fresh directory for each session turns the second and later compilations
into a disk read. No result changes: a cache hit loads the executable XLA built for the same program, options
and XLA flags (all part of the key). The counts of compilations that tests check (``TrainResult.compiles``,
``_cache_size()``) read jit's in-memory cache, which a disk cache does not change.

The directory is made by the first process that imports this file (pytest, or the xdist controller) and handed
to the workers and every subprocess through the environment; the process that made it removes it when it exits.
A session therefore starts empty: nothing compiled by another checkout or JAX version is read. A size limit
turns on JAX's file lock, so a worker never reads an entry that another one is still writing.
``RLKIT_TEST_COMPILE_CACHE=0`` runs without the cache; a ``JAX_COMPILATION_CACHE_DIR`` already set is used as it is.
"""

import atexit
import os
import shutil
import tempfile

# Set before anything imports JAX (no plugin does; JAX reads these at import, in every process of the session).
if os.environ.get("RLKIT_TEST_COMPILE_CACHE", "1") != "0" and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="rlkit-test-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.5"
    os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"] = str(8 * 2**30)  # a limit turns on the file lock
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
