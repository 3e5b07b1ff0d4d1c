"""The docs site: ``mkdocs build --strict`` passes (the API reference generated from the docstrings, every link
resolved), and every tutorial runs — its Python blocks in order, in one namespace and a temporary directory, then
its command lines checked as the README's are (``tests/test_readme.py``'s ``check_command``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from tests.test_readme import check_command

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.md"))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
#: command lines a tutorial shows that are not rlkit's to check (installing, starting a cluster)
NOT_OURS = ("pip install", "ray start")


def blocks(page: Path, lang: str) -> list[tuple[int, str]]:
    text = page.read_text()
    return [
        (text[: m.start()].count("\n") + 2, m.group(2)) for m in FENCE.finditer(text) if m.group(1) == lang
    ]


def test_the_site_builds_strictly(tmp_path):
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "WARNING" not in done.stderr, done.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "training" / "index.html").read_text()
    assert "rlkit.training.train" in api and "bit for" in api  # a docstring rendered into the reference
    assert (tmp_path / "site" / "reproductions" / "results" / "slim" / "index.html").exists()  # a result page
    assert (tmp_path / "site" / "reproductions" / "results" / "slim.png").exists()  # with its figure


@pytest.mark.parametrize("page", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(page, tmp_path, monkeypatch):
    from rlkit import registry

    python = blocks(page, "python")
    assert python, f"{page.name} has no python block"
    monkeypatch.chdir(tmp_path)
    saved = dict(registry.entries())  # a tutorial may register an agent: keep it out of the other tests
    module = types.ModuleType(f"tutorial_{page.stem.replace('-', '_')}")  # a script's module, as __main__ is
    monkeypatch.setitem(sys.modules, module.__name__, module)
    try:
        for line, code in python:
            exec(compile("\n" * (line - 1) + code, str(page), "exec"), module.__dict__)  # noqa: S102
    finally:
        registry._ENTRIES.clear()
        registry._ENTRIES.update(saved)
    failures = []
    for line, block in blocks(page, "bash"):
        for command in block.splitlines():
            if not command.strip() or command.startswith(NOT_OURS):
                continue
            try:
                check_command(command)
            except Exception as err:  # noqa: BLE001 - every broken line, not just the first
                failures.append(f"{page.name}:{line}: {command}\n    {type(err).__name__}: {err}")
    assert not failures, "\n".join(failures)


def test_every_tutorial_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    missing = [p.name for p in TUTORIALS if f"tutorials/{p.name}" not in nav]
    assert not missing, f"tutorials not in mkdocs.yml's nav: {missing}"
