"""`hfl`: the command line of hedgefund-lite."""

from __future__ import annotations

import argparse
import signal
import sys

from dataflows.commands import (
    bench,
    deployment,
    models,
    observability,
    operations,
    reliability,
    research,
)
from risk.domain.error import HflError

GROUPS = (
    ("operations", operations),
    ("models", models),
    ("reliability", reliability),
    ("observability", observability),
    ("bench", bench),
    ("research", research),
    ("deployment", deployment),
)


def parser() -> argparse.ArgumentParser:
    """The argument parser of `hfl`; its help lists the commands by group."""
    main = argparse.ArgumentParser(
        prog="hfl",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    epilog = ["command groups:"]
    for name, group in GROUPS:
        before = set(sub.choices)
        group.add(sub)
        epilog.append(f"  {name:<14} {', '.join(c for c in sub.choices if c not in before)}")
    main.epilog = "\n".join(epilog)
    return main


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `hfl` console script.

    SIGTERM is handled like Ctrl-C so long commands stop their child processes.
    """
    signal.signal(signal.SIGTERM, _interrupt)
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except HflError as exc:
        print(f"hfl {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
