"""`hfl`: the command line of hedgefund-lite."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import NoReturn

from dataflows.commands import (
    access,
    bench,
    deployment,
    ingest,
    models,
    observability,
    operations,
    reliability,
    research,
)
from dataflows.commands.context import select_run
from risk.domain.error import HflError
from risk.redact import redact_text

GROUPS = (
    ("operations", operations),
    ("ingestion", ingest),
    ("models", models),
    ("reliability", reliability),
    ("observability", observability),
    ("bench", bench),
    ("research", research),
    ("security", access),
    ("deployment", deployment),
)


class OneLineParser(argparse.ArgumentParser):
    """A wrong argument is one line on stderr and exit 2, as every other refusal of
    `hfl` is (its subcommands' parsers are of this class too); `--help` shows usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (usage: {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    """The argument parser of `hfl`; its help lists the commands by group."""
    main = OneLineParser(
        prog="hfl",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    main.add_argument(
        "--run",
        dest="run_name",
        default=None,
        metavar="NAME",
        help="the running system to address (default: the only one in var/runs)",
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
    select_run(args.run_name)
    try:
        return int(args.run(args))
    except HflError as exc:
        # A URL's password (a ClickHouse DSN in a connection error) never reaches the terminal.
        print(f"hfl {args.command}: {redact_text(str(exc))}", file=sys.stderr)
        return 2
    except Exception as exc:  # a user sees one line; HFL_DEBUG=1 shows the traceback
        if os.environ.get("HFL_DEBUG") == "1":
            raise
        print(
            f"hfl {args.command}: failed: {type(exc).__name__}: {exc}"
            " (HFL_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
