"""The one check every bad-input test of the ``rlkit`` command makes: exit status 2, one stderr line."""

from __future__ import annotations

import pytest

from experiments import cli


def one_error_line(capsys, argv: list[str], prefix: str = "") -> str:
    """Run the CLI in-process; it must exit 2 with exactly one non-empty stderr line (returned), starting with
    ``prefix``, and no traceback (plain or rich)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert exit_info.value.code == 2, (argv, err)
    assert len(lines) == 1 and lines[0].startswith(prefix), (argv, err)
    assert "Traceback" not in err and "╭" not in err, (argv, err)
    return lines[0]
