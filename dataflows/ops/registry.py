"""Where running systems say what they listen on, so operator commands reach them.

`hfl demo` and `hfl up` each register a run in `var/runs/<name>.json`: its topic
prefix, broker, store and dashboard port, and the PID of the process that owns it. An
operator command (`hfl kill`, `hfl limits`, `hfl models`, `hfl sql`, ...) finds the
running system there, or takes `--run NAME`; with none running, a command that must
reach one fails saying so instead of publishing into a namespace nobody reads.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from dataflows.settings import Secret, Settings
from risk.domain.error import HflError

RUNS_DIR = Path("var") / "runs"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """What one running system listens on."""

    name: str
    kind: str  # "demo" or "up"
    pid: int
    topic_prefix: str
    bootstrap: str
    clickhouse_url: str
    dashboard_port: int
    started_ns: int

    def alive(self) -> bool:
        """True while the owning process runs."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        stat = Path(f"/proc/{self.pid}/stat")
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True

    def apply(self, settings: Settings) -> Settings:
        """`settings` pointed at this run: its topics, broker, store and dashboard."""
        kafka = replace(settings.kafka, topic_prefix=self.topic_prefix, bootstrap=self.bootstrap)
        clickhouse = replace(settings.clickhouse, url=Secret(self.clickhouse_url))
        dashboard = replace(settings.dashboard, port=self.dashboard_port)
        return replace(settings, kafka=kafka, clickhouse=clickhouse, dashboard=dashboard)


STORE_FILE = "clickhouse_url"


def keep_store(run_dir: Path, url: str) -> None:
    """Record in a run's directory which store holds its rows (read by `run_store`)."""
    (run_dir / STORE_FILE).write_text(url)


def run_store(root: Path, run_id: str) -> str | None:
    """The store run `run_id` wrote to, when its directory recorded one (`hfl report`).

    >>> run_store(Path("/nonexistent"), "demo-1") is None
    True
    """
    try:
        return (root / RUNS_DIR / run_id / STORE_FILE).read_text().strip() or None
    except OSError:
        return None


def register(root: Path, record: RunRecord) -> Path:
    """Write `record` to `var/runs/<name>.json` under `root`; return the path."""
    path = root / RUNS_DIR / f"{record.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record), indent=2))
    tmp.replace(path)
    return path


def unregister(root: Path, name: str) -> None:
    """Remove run `name`'s record (the run ended)."""
    (root / RUNS_DIR / f"{name}.json").unlink(missing_ok=True)


def runs(root: Path) -> list[RunRecord]:
    """Every registered run whose owning process is alive, newest first."""
    found = []
    for path in sorted((root / RUNS_DIR).glob("*.json")):
        try:
            record = RunRecord(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if record.alive():
            found.append(record)
    return sorted(found, key=lambda r: r.started_ns, reverse=True)


def find_run(root: Path, name: str | None) -> RunRecord | None:
    """Run `name`, or the only running one (None when none runs and none was named).

    Raises:
        HflError: `name` is not running, or several run and none was named.
    """
    running = runs(root)
    if name:
        for record in running:
            if record.name == name:
                return record
        known = ", ".join(r.name for r in running) or "none"
        raise HflError(f"no running system named {name!r} (running: {known})")
    if len(running) > 1:
        names = ", ".join(r.name for r in running)
        raise HflError(f"several systems run ({names}): choose one with --run NAME")
    return running[0] if running else None
