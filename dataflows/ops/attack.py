"""`make security`: attack a live local stack on loopback and print one JSON line.

Starts its own broker (Tansu on a free loopback port), the persist, trading and gateway
flows, the dashboard, and a simulated feed, all under ``var/security/<run>``; creates
keys of every role; then probes what issue 15 found open:

- SQL (dashboard console with a trader key, and the persist flow's query endpoint
  without its token): host files, the process environment, OUTFILE, server-side URLs,
  remote servers, KILL, SYSTEM, SET, an unbounded query, token extraction from `runs`;
- web: CSRF (cross-site text/plain POST), a foreign Host, no key, a viewer key;
- control: unsigned, forged, viewer-signed and replayed commands on `hfl.control`
  (each must be a dead letter with its reason and leave the trading state unchanged);
- poison pills: garbage on every topic a flow reads; no flow may exit;
- isolation: a slow console query must not delay `/health/ready` or the project's
  readers by more than 100 ms (median over the probe, against a baseline);
- secrets: every table, every topic and every log line scanned for every configured
  secret (API tokens, passwords).

A probe's outcome is "refused" (what it tried did not happen) or "open" (it did).
Bounded: each wait has a deadline; the whole run takes about a minute.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connectors import topic
from connectors.broker import start_broker, stop_broker
from connectors.codec import encode
from connectors.kafka.admin import create_topics
from connectors.kafka.producer import CheckedProducer
from connectors.kafka.reader import read_to_end
from connectors.kafka.record import OutboundRecord
from connectors.keyfile import save_keys
from dataflows.ops.control import control_events
from dataflows.ops.process import Child, start_child, start_flow, stop
from dataflows.ops.signing import Signer
from dataflows.settings import load_settings, secret_values
from risk.access import Role, new_key, parse_token
from risk.domain import ControlAction
from sinks.migration import available
from sinks.query import QueryError, query_http, read_port_file

WAIT_S = 90.0
SQL_PROBES = {
    "sql_file_read": "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "sql_environ": "SELECT * FROM file('/proc/self/environ', 'RawBLOB')",
    "sql_file_function": "SELECT file('/etc/hostname')",
    "sql_outfile": "SELECT 'x' INTO OUTFILE '/tmp/hfl-attack-outfile' APPEND",
    "sql_insert_function": "INSERT INTO FUNCTION file('/tmp/hfl-attack-x', 'CSV') SELECT 1",
    "sql_url": "SELECT * FROM url('http://127.0.0.1:1/', 'CSV', 'x String')",
    "sql_remote": "SELECT * FROM remote('127.0.0.1:9000', system.one)",
    "sql_kill": "KILL QUERY WHERE 1",
    "sql_system": "SYSTEM STOP MERGES",
    "sql_set": "SET max_result_rows = 1",
    "sql_settings_clause": "SELECT 1 SETTINGS readonly = 0",
    "sql_system_table": "SELECT query FROM system.processes",
}


class Stack:
    """The processes of one attack run and how to reach them."""

    def __init__(self, root: Path) -> None:
        """Prepare a run directory under `root/var/security`."""
        self.run = root / "var" / "security" / time.strftime("%Y%m%dT%H%M%S")
        self.run.mkdir(parents=True, exist_ok=True)
        self.prefix = f"attack-{os.getpid()}."
        self.children: list[Child] = []
        self.tokens: dict[Role, str] = {}
        self.env: dict[str, str] = {}
        self.board_port = 0
        self.broker_pid = self.run / "broker.pid"

    def start(self, root: Path) -> None:
        """Broker, keys, flows, dashboard and feed."""
        port, self.board_port = _free_port(), _free_port()
        start_broker("127.0.0.1", port, self.broker_pid, self.run / "broker.log")
        made = {role: new_key(f"attack-{role}", role, created_ns=time.time_ns()) for role in Role}
        save_keys(self.run / "keys.json", [key for key, _ in made.values()])
        self.tokens = {role: str(token) for role, (_, token) in made.items()}
        self.env = {
            "HFL_KAFKA__BOOTSTRAP": f"127.0.0.1:{port}",
            "HFL_KAFKA__TOPIC_PREFIX": self.prefix,
            "HFL_CLICKHOUSE_URL": f"chdb://{self.run / 'clickhouse'}",
            "HFL_SECURITY__KEYS_FILE": str(self.run / "keys.json"),
            "HFL_API_KEY": self.tokens[Role.ADMIN],
            # A configured secret nobody needs: it must never show anywhere either.
            "HFL_KAFKA__SECURITY__PASSWORD": "attack-canary-" + os.urandom(8).hex(),
            "HFL_DASHBOARD__PORT": str(self.board_port),
            "HFL_TRADING__INSTRUMENTS": "AAPL,MSFT",
            "PROMETHEUS_MULTIPROC_DIR": str(self.run / "metrics"),
        }
        (self.run / "metrics").mkdir(exist_ok=True)
        create_topics(self.env["HFL_KAFKA__BOOTSTRAP"], prefix=self.prefix)
        settings = self.settings(root)
        for name in ("persist", "trading", "gateway"):
            self.children.append(start_flow(name, settings, self.run, self.env))
        python = [sys.executable, "-m", "dataflows.commands"]
        self.children.append(start_child("dashboard", [*python, "dashboard"], self.run, self.env))
        self.children.append(
            start_child(
                "feed",
                [*python, "feed", "simulate", "--ticks", "3000", "--rate", "300"],
                self.run,
                self.env,
            )
        )

    def settings(self, root: Path) -> Any:
        """The run's settings (environment over the project's config)."""
        return load_settings(root / "config", env={**os.environ, **self.env})

    def stop(self) -> None:
        """Stop every child by its PID, then the broker."""
        for child in reversed(self.children):
            stop(child)
        stop_broker(self.broker_pid)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tables() -> list[str]:
    """The project's tables, from its own migrations (trusted DDL, not user input)."""
    names = {"schema_migrations"}
    for migration in available():
        for statement in migration.statements:
            words = statement.split()
            if words[:2] == ["CREATE", "TABLE"]:
                names.add(words[5] if words[2:5] == ["IF", "NOT", "EXISTS"] else words[2])
    return sorted(names)


def _http(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, float]:
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        sent = {"Host": f"127.0.0.1:{port}"} | (headers or {})
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return response.status, response.read(), time.perf_counter() - started
    finally:
        connection.close()


def _wait(condition: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = condition()
        except (OSError, QueryError, http.client.HTTPException):
            result = None
        if result:
            return result
        time.sleep(0.3)
    raise TimeoutError(f"timed out waiting for {what}")


def read_all(bootstrap: str, name: str) -> list[bytes]:
    """Every record value of topic `name` so far (none when it cannot be read)."""
    try:
        return [record.value for record in read_to_end(bootstrap, [name], timeout_s=30)]
    except (OSError, TimeoutError, KeyError):
        return []


def run_attack(root: Path) -> dict[str, Any]:
    """Run every probe against a fresh local stack; return the report."""
    stack = Stack(root)
    report: dict[str, Any] = {"run_dir": str(stack.run), "probes": {}}
    probes: dict[str, str] = report["probes"]
    try:
        stack.start(root)
        port = stack.board_port
        url = stack.env["HFL_CLICKHOUSE_URL"]
        bootstrap = stack.env["HFL_KAFKA__BOOTSTRAP"]
        _wait(lambda: _http(port, "GET", "/health/live")[0] == 200, "the dashboard")
        _wait(lambda: read_port_file(url), "the persist flow's query endpoint")
        _wait(
            lambda: (
                query_http(
                    read_port_file(url) or 0,
                    "SELECT count() FROM ticks",
                    token=_token(url),
                    console=False,
                )[1][0][0]
                > 100
            ),
            "ticks in the store",
        )

        probes |= _web_probes(stack, root)
        # Control topic.
        probes |= _control_probes(stack, root, bootstrap)
        report["slow_query"] = _isolation(stack)
        probes["slow_query_isolation"] = (
            "refused" if report["slow_query"]["added_ms"] <= 100 else "open"
        )
        found = _scan(stack, root)
        report["secrets_found"] = len(found)
        probes["secrets_at_rest"] = "refused" if not found else f"open ({', '.join(found)})"
        # Poison pills on every topic a flow reads.
        producer = CheckedProducer(bootstrap)
        for spec in topic.ALL_TOPICS:
            for pill in (
                b"this is not json",
                b'{"max_position":[0,[1],18446744073709551615]}',
                b"\xff\xfe",
                b"[" * 5000,
            ):
                producer.send([OutboundRecord(stack.prefix + spec.name, b"x", pill)])
        time.sleep(8)
        crashed = [
            f"{c.name}: {c.tail(1)[-160:]}"
            for c in stack.children
            if c.name != "feed" and c.process.poll() is not None
        ]
        report["crashes"] = len(crashed)
        probes["poison_pills"] = (
            "refused" if not crashed else f"open (exited: {', '.join(crashed)})"
        )

    except Exception as exc:  # the report says what broke; the exit status too
        report["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        stack.stop()
    report["ok"] = "error" not in report and all(
        outcome.startswith("refused") for outcome in probes.values()
    )
    return report


def _web_probes(stack: Stack, root: Path) -> dict[str, str]:
    """SQL through the console and the query endpoint, then CSRF, Host and keys."""
    probes: dict[str, str] = {}
    port = stack.board_port
    url = stack.env["HFL_CLICKHOUSE_URL"]
    trader = {"X-Hfl-Key": stack.tokens[Role.TRADER], "Content-Type": "application/json"}

    def console(sql: str) -> tuple[int, bytes, float]:
        return _http(port, "POST", "/api/sql", json.dumps({"sql": sql}).encode(), trader)

    for name, sql in SQL_PROBES.items():
        status, body, _ = console(sql)
        probes[name] = "refused" if status in (400, 403) else f"open ({status})"
    probes["sql_outfile_written"] = (
        "open" if Path("/tmp/hfl-attack-outfile").exists() else "refused"
    )
    status, body, elapsed = console("SELECT count() FROM numbers(100000000000)")
    probes["sql_unbounded"] = (
        f"refused (stopped after {elapsed:.1f} s)" if status == 400 else f"open ({status})"
    )
    status, body, _ = console("SELECT config FROM runs")
    leaked = [s for s in stack_secrets(stack, root) if s.encode() in body]
    probes["sql_token_extraction"] = "open" if leaked else "refused"
    port_q = read_port_file(url) or 0
    try:
        query_http(port_q, "SELECT 1", token="", console=True)
        probes["query_endpoint_without_token"] = "open"
    except QueryError:
        probes["query_endpoint_without_token"] = "refused"

    # Web.
    status, _, _ = _http(
        port,
        "POST",
        "/api/control",
        b'{"action":"kill"}',
        {"Content-Type": "text/plain", "Origin": "http://evil.example"},
    )
    probes["csrf_cross_site_text_plain"] = "refused" if status in (401, 403, 415) else "open"
    status, _, _ = _http(port, "GET", "/api/snapshot", headers={"Host": "evil.example"})
    probes["dns_rebinding_host"] = "refused" if status == 421 else f"open ({status})"
    status, _, _ = _http(
        port, "POST", "/api/control", b'{"action":"kill"}', {"Content-Type": "application/json"}
    )
    probes["control_without_key"] = "refused" if status == 401 else f"open ({status})"
    viewer = {"X-Hfl-Key": stack.tokens[Role.VIEWER], "Content-Type": "application/json"}
    status, _, _ = _http(port, "POST", "/api/control", b'{"action":"kill"}', viewer)
    probes["control_viewer_key"] = "refused" if status == 403 else f"open ({status})"

    return probes


def _token(url: str) -> str:
    from sinks.query import read_token_file

    return read_token_file(url)


def stack_secrets(stack: Stack, root: Path) -> list[str]:
    """Every secret configured for the run: API tokens (and their secret parts), passwords."""
    values = set(secret_values(stack.settings(root)))
    for token in stack.tokens.values():
        values |= {token, parse_token(token).secret}
    return sorted(v for v in values if len(v) >= 8)


def _control_probes(stack: Stack, root: Path, bootstrap: str) -> dict[str, str]:
    settings = stack.settings(root)
    control = stack.prefix + topic.CONTROL
    producer = CheckedProducer(bootstrap)

    def command(action: ControlAction, reason: str) -> bytes:
        made, _ = control_events("paper-1", action, reason, "spoofed", ts_event=time.time_ns())
        return encode(made)

    def signed(role: Role, value: bytes) -> bytes:
        record = OutboundRecord(control, b"paper-1", value)
        return Signer(settings, parse_token(stack.tokens[role])).sign([record])[0].value

    def send(value: bytes) -> None:
        producer.send([OutboundRecord(control, b"paper-1", value)])

    def dlq_reasons() -> list[str]:
        return [
            str(json.loads(v).get("reason"))
            for v in read_all(bootstrap, stack.prefix + topic.DLQ)
            if v.startswith(b"{") and control.encode() in v
        ]

    def states() -> list[str]:
        out = []
        for v in read_all(bootstrap, stack.prefix + topic.RISK_EVENTS):
            try:
                out.append(str(json.loads(v)["state"]))
            except (ValueError, KeyError, TypeError):
                continue
        return out

    kill = signed(Role.TRADER, command(ControlAction.KILL, "attack: trader kill"))
    forged = json.loads(signed(Role.TRADER, command(ControlAction.KILL, "forged")))
    forged["sig"] = "0" * 64
    before = states()
    send(command(ControlAction.KILL, "spoofed unsigned kill"))
    send(json.dumps(forged).encode())
    send(signed(Role.VIEWER, command(ControlAction.KILL, "viewer kill")))
    _wait(lambda: len(dlq_reasons()) >= 3, "dead letters of the refused commands")
    send(kill)
    _wait(lambda: "halted" in states()[len(before) :], "the trader's kill")
    send(signed(Role.ADMIN, command(ControlAction.RESUME, "attack: admin resume")))
    _wait(lambda: states()[len(before) :][-1:] == ["active"], "the admin's resume")
    send(kill)
    _wait(lambda: "replayed" in dlq_reasons(), "the replay's dead letter")
    time.sleep(2)
    reasons, after = dlq_reasons(), states()[len(before) :]
    # The replayed kill must not halt again after the resume.
    resumed_at = len(after) - 1 - after[::-1].index("active") if "active" in after else -1
    replay_halted = after[resumed_at + 1 :]

    def outcome(reason: str) -> str:
        return "refused" if reason in reasons else "open"

    return {
        "control_unsigned": outcome("unsigned"),
        "control_forged": outcome("bad_signature"),
        "control_wrong_role": outcome("forbidden"),
        "control_replayed": (
            outcome("replayed") if "halted" not in replay_halted else f"open (states {after})"
        ),
    }


def _isolation(stack: Stack) -> dict[str, float]:
    """Median latency of /health/ready and of a reader query, alone and beside a slow
    console query (10 s limit)."""
    port = stack.board_port
    url = stack.env["HFL_CLICKHOUSE_URL"]
    trader = {"X-Hfl-Key": stack.tokens[Role.ADMIN], "Content-Type": "application/json"}

    def sample(count: int) -> tuple[float, float]:
        ready, reads = [], []
        for _ in range(count):
            ready.append(_http(port, "GET", "/health/ready")[2])
            started = time.perf_counter()
            query_http(
                read_port_file(url) or 0,
                "SELECT count() FROM ticks",
                token=_token(url),
                console=False,
            )
            reads.append(time.perf_counter() - started)
            time.sleep(0.1)
        return statistics.median(ready) * 1000, statistics.median(reads) * 1000

    base_ready, base_read = sample(15)
    slow = threading.Thread(
        target=_http,
        args=(
            port,
            "POST",
            "/api/sql",
            json.dumps({"sql": "SELECT count() FROM numbers(100000000000)"}).encode(),
            trader,
        ),
    )
    slow.start()
    time.sleep(0.5)
    busy_ready, busy_read = sample(15)
    slow.join()
    return {
        "ready_ms": round(base_ready, 1),
        "ready_busy_ms": round(busy_ready, 1),
        "reader_ms": round(base_read, 1),
        "reader_busy_ms": round(busy_read, 1),
        "added_ms": round(max(busy_ready - base_ready, busy_read - base_read), 1),
    }


def _scan(stack: Stack, root: Path) -> list[str]:
    """Where any configured secret appears: tables, topics, log files."""
    secrets = stack_secrets(stack, root)
    url = stack.env["HFL_CLICKHOUSE_URL"]
    bootstrap = stack.env["HFL_KAFKA__BOOTSTRAP"]
    port = read_port_file(url) or 0
    found = []
    for table in _tables():
        try:
            _, rows = query_http(port, f"SELECT * FROM {table}", token=_token(url), console=False)
        except QueryError:
            continue
        text = json.dumps(rows, default=str)
        found += [f"table {table}" for s in secrets if s in text]
    for spec in topic.ALL_TOPICS:
        blob = b"\n".join(read_all(bootstrap, stack.prefix + spec.name))
        found += [f"topic {spec.name}" for s in secrets if s.encode() in blob]
    for log in stack.run.rglob("*.log"):
        text = log.read_text(errors="replace")
        found += [f"log {log.name}" for s in secrets if s in text]
    return sorted(set(found))


def main() -> int:
    """Run the suite from the project root and print the one JSON line."""
    root = Path.cwd()
    report = run_attack(root)
    print(json.dumps(report, separators=(",", ":")))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
