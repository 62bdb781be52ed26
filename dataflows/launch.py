"""Run a flow as `python -m bytewax.run` does, without imports no flow uses.

`python -m dataflows.launch "dataflows.trading:build_flow()" -r … -s … -b …` takes
`bytewax.run`'s arguments. River's drift package imports `river.stream`, which
imports scikit-learn whenever it is installed (the dev extra installs it): about a
third of a second of CPU, more wall time under load, on every flow start and so on
every recovery after a crash. No flow uses scikit-learn; this launcher marks it
absent (River skips its optional scikit-learn helpers) and then runs Bytewax.
"""

from __future__ import annotations

import runpy
import sys

UNUSED = ("sklearn",)


def main() -> None:
    """Mark `UNUSED` modules absent, then run `bytewax.run` with this process's argv."""
    for name in UNUSED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    runpy.run_module("bytewax.run", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
