"""The project's own set-up: finding a Python >= 3.12 (PATH first, then pyenv) and saying clearly when none."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIND = ROOT / "scripts" / "find-python"


def _run(path: str, home: Path, pyenv_root: Path | None = None):
    env = {"PATH": path, "HOME": str(home)}
    if pyenv_root is not None:
        env["PYENV_ROOT"] = str(pyenv_root)
    return subprocess.run(["/bin/bash", str(FIND)], env=env, capture_output=True, text=True, timeout=60)


def _fake_python(path: Path, version: tuple[int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"#!/bin/bash\n# a stand-in interpreter reporting Python {version}\n"
        f"exec {sys.executable} -c 'import sys; sys.exit(0 if {version} >= (3, 12) else 1)'\n"
    )
    path.chmod(0o755)
    return path


def test_prefers_path_then_pyenv_and_explains_when_none(tmp_path):
    bin_old, bin_new = tmp_path / "old" / "bin", tmp_path / "new" / "bin"
    _fake_python(bin_old / "python3", (3, 11))
    new = _fake_python(bin_new / "python3.12", (3, 12))
    tools_dir = tmp_path / "tools"  # only the utilities the script uses: no system python can leak in
    tools_dir.mkdir()
    for tool in ("ls", "sort"):
        (tools_dir / tool).symlink_to(shutil.which(tool))
    tools = str(tools_dir)
    # on PATH: the 3.12 wins over an older python3
    out = _run(f"{bin_old}:{bin_new}:{tools}", tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == str(new)
    # only an old python on PATH: pyenv's versions are searched next
    pyenv = tmp_path / "pyenv"
    in_pyenv = _fake_python(pyenv / "versions" / "3.13.0" / "bin" / "python3", (3, 13))
    out = _run(f"{bin_old}:{tools}", tmp_path, pyenv)
    assert out.returncode == 0 and out.stdout.strip() == str(in_pyenv)
    # none at all: exit 1 with a message that says what is needed and where it looked
    out = _run(f"{bin_old}:{tools}", tmp_path, tmp_path / "no-pyenv")
    assert out.returncode == 1
    assert "needs Python >= 3.12" in out.stderr and "pyenv" in out.stderr


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
