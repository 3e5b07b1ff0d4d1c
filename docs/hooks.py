"""MkDocs hook: the measured results under ``experiments/`` become pages of the site (``reproductions/``), with
their figures, so the site shows the same tables the scripts wrote — never a hand-copied number."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
#: result directories -> the site folder their pages go to
RESULTS = {
    ROOT / "experiments" / "reproduce" / "results": "reproductions/results",
    ROOT / "experiments" / "results": "reproductions/experiments",
    ROOT / "experiments" / "benchmarks" / "results": "reproductions/benchmarks",
}


def on_files(files, config):
    for source, target in RESULTS.items():
        for path in sorted(source.glob("*")):
            if path.suffix not in (".md", ".png") or path.stem.endswith("_quick"):
                continue
            uri = f"{target}/{path.name}"
            content = path.read_text() if path.suffix == ".md" else path.read_bytes()
            files.append(File.generated(config, uri, content=content))
    return files
