"""The ``rlkit`` command: ``rlkit train …`` (the main job's typed config; ``--help`` documents every field) and
``rlkit envs`` (the registered env ids). ``eval`` and ``plot`` arrive with the learners (Foundation 3/3)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = ("train", "envs")
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print(f"usage: rlkit {{{','.join(commands)}}} [options]   (rlkit train --help for the config fields)")
        raise SystemExit(0 if not argv or argv[0] in ("-h", "--help") else 2)
    command, rest = argv[0], argv[1:]
    if command == "envs":
        import envs

        print(envs.describe())
        return
    from experiments.train import main as train_main

    train_main(rest)


if __name__ == "__main__":
    main()
