"""Deployment: one flow per process (`hfl flow run`), as containers run them, and the
health probe their images use (`hfl probe`)."""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from dataflows.commands.context import ROOT, current_settings
from dataflows.ops.process import FLOWS

PROBE_TIMEOUT_S = 3.0
STORE_WAIT_S = 300.0


def wait_for_store(directory: Path, timeout_s: float) -> None:
    """Wait until the Bytewax recovery store in `directory` exists (another process makes it).

    Raises:
        HflError: it did not appear within `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    while not any(directory.glob("part-*.sqlite3")):
        if time.monotonic() > deadline:
            from risk.domain.error import HflError

            raise HflError(f"no recovery store in {directory} after {timeout_s:.0f} s")
        time.sleep(0.5)


def flow_argv(name: str, recovery_dir: Path) -> list[str]:
    """`bytewax.run`'s arguments for flow `name` from the settings: recovery always on,
    and `-i/-a` (or `-w`) when the process is one of a Bytewax cluster."""
    settings = current_settings()
    recovery, cluster = settings.recovery, settings.bytewax
    argv = [
        f"dataflows.flows.{name}:build_flow()",
        "-r",
        str(recovery_dir),
        "-s",
        str(recovery.snapshot_interval_s),
        "-b",
        str(recovery.backup_interval_s),
    ]
    if cluster.process_id >= 0:
        if not cluster.addresses:
            from risk.domain.error import ConfigError

            raise ConfigError("bytewax.process_id is set but bytewax.addresses is empty")
        argv += ["-i", str(cluster.process_id), "-a", ";".join(cluster.addresses)]
    if cluster.workers_per_process > 1:
        argv += ["-w", str(cluster.workers_per_process)]
    return argv


def _flow(args: argparse.Namespace) -> int:
    from dataflows.ops import launch
    from dataflows.ops.process import init_recovery

    settings = current_settings()
    directory = ROOT / settings.recovery.directory / args.name
    if settings.bytewax.process_id > 0:
        # The processes of one cluster share the store (one volume); process 0 creates
        # it, the others wait for it instead of racing to create the same partition.
        wait_for_store(directory, STORE_WAIT_S)
    else:
        init_recovery(directory)
    if settings.metrics.port:
        from connectors.telemetry.metric import serve_metrics

        port = serve_metrics(settings.metrics.host, settings.metrics.port)
        print(
            f"{args.name}: metrics on http://{settings.metrics.host}:{port}/metrics",
            file=sys.stderr,
            flush=True,
        )
    sys.argv = ["bytewax.run", *flow_argv(args.name, directory)]
    launch.main()
    return 0


def _probe(args: argparse.Namespace) -> int:
    url = args.url
    if not url:
        metrics = current_settings().metrics
        if not metrics.port:
            print("probe: no URL and metrics.port is 0", file=sys.stderr)
            return 1
        url = f"http://127.0.0.1:{metrics.port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:
            ok = 200 <= response.status < 300
    except (OSError, urllib.error.URLError) as exc:
        print(f"probe {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `hfl flow run NAME` and `hfl probe [URL]`."""
    flow = sub.add_parser(
        "flow", help="run one flow in this process (a container): recovery on, own /metrics"
    )
    flow_sub = flow.add_subparsers(dest="action", required=True)
    run = flow_sub.add_parser(
        "run", help="run a flow until stopped (bytewax.run, -i/-a from bytewax.* settings)"
    )
    run.add_argument("name", choices=FLOWS)
    run.set_defaults(run=_flow)

    probe = sub.add_parser(
        "probe", help="health probe: GET a URL (default this host's metrics.port /metrics)"
    )
    probe.add_argument("url", nargs="?", default="")
    probe.set_defaults(run=_probe)
