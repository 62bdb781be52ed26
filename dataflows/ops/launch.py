"""Run a flow as `python -m bytewax.run` does, without imports no flow uses; or a warm standby.

`python -m dataflows.ops.launch "dataflows.flows.trading:build_flow()" -r … -s … -b …` takes
`bytewax.run`'s arguments. River's drift package imports `river.stream`, which
imports scikit-learn whenever it is installed (the dev extra installs it): about a
third of a second of CPU, more wall time under load, on every flow start and so on
every recovery after a crash. No flow uses scikit-learn; this launcher marks it
absent (River skips its optional scikit-learn helpers) and then runs Bytewax.

Warm standby: with `HFL_STANDBY=1` in its environment the process first imports
Bytewax and the flow's module (Python, Bytewax, River, NumPy: most of a cold start,
seconds on a starved CPU), then waits for one line on stdin. `run` starts the flow,
which only then opens its recovery store; end of input (whoever started it stopped
or died) exits 0 without running anything. A standby runs its flow at most once.

A bounded trading flow that ended without its risk gate settling (the gateway gone,
`dataflows.flows.run_end`) exits with `GAVE_UP_EXIT` instead of 0.
"""

from __future__ import annotations

import importlib
import os
import runpy
import sys

UNUSED = ("sklearn",)
# Same value as `dataflows.flows.run_end.GAVE_UP_EXIT`, which this module must not import
# before the flow runs: a bounded run's guard fired; the supervisor does not restart it.
GAVE_UP_EXIT = 3
STANDBY_ENV = "HFL_STANDBY"
GO = b"run\n"


def main() -> None:
    """Mark `UNUSED` modules absent, then run `bytewax.run` with this process's argv."""
    for name in UNUSED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    if os.environ.pop(STANDBY_ENV, "") == "1" and not _stand_by(sys.argv[1]):
        return
    try:
        runpy.run_module("bytewax.run", run_name="__main__", alter_sys=True)
    except Exception as exc:
        guard = _end_guard(exc)
        if guard is None:
            raise
        print(f"bounded run failed: {guard}", file=sys.stderr, flush=True)
        sys.exit(GAVE_UP_EXIT)
    run_end = sys.modules.get("dataflows.flows.run_end")
    if run_end is not None and run_end.gave_up():
        sys.exit(run_end.GAVE_UP_EXIT)


def _end_guard(error: BaseException | None) -> BaseException | None:
    """The `EndGuardError` in `error`'s chain (Bytewax wraps what a step raised)."""
    from connectors.kafka.end import EndGuardError

    while error is not None:
        if isinstance(error, EndGuardError):
            return error
        error = error.__cause__ or error.__context__
    return None


def _stand_by(import_str: str) -> bool:
    """Import what flow `import_str` needs; True once told to run, False at end of input."""
    importlib.import_module("bytewax.recovery")  # `bytewax.run` itself runs as __main__
    importlib.import_module(import_str.split(":", 1)[0])
    return sys.stdin.buffer.readline() == GO


if __name__ == "__main__":
    main()
