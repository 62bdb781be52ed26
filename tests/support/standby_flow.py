"""A tiny Bytewax flow for the warm-standby tests, started through `dataflows.ops.launch`.

Importing it prints `imported <pid>`; building it appends the PID to the file `runs`
and fails (exit 1) while that file holds fewer than `fail_runs` earlier runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource

# One write(2) of the whole line: the standby and the running flow append to the same
# log, and print() unbuffered (PYTHONUNBUFFERED) writes the text and its newline apart.
os.write(sys.stdout.fileno(), f"imported {os.getpid()}\n".encode())


def build_flow(runs: str, fail_runs: int) -> Dataflow:
    """A flow of three numbers; the first `fail_runs` builds exit 1 instead."""
    path = Path(runs)
    before = len(path.read_text().split()) if path.exists() else 0
    with path.open("a") as out:
        out.write(f"{os.getpid()}\n")
    if before < fail_runs:
        sys.exit(1)
    flow = Dataflow("standby_test")
    numbers = op.input("numbers", flow, TestingSource([1, 2, 3]))
    op.inspect("seen", numbers)
    return flow
