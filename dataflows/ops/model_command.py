"""`hfl models list|show|promote|rollback`: the model registry from the command line.

Reads go to ClickHouse through `sinks.query` (the persist flow's read-only query
server while it runs, the store itself otherwise). Promote and rollback are
`ModelCommand`s produced to `hfl.models.control` with checked delivery; the trading
flow carries them out on every addressed instrument and answers with an
`AuditEvent` (`model_promoted`, `model_rolled_back`, or `…_rejected` with the reason),
which the persist flow writes to the `audit` table.
"""

from __future__ import annotations

import time
from dataclasses import replace

from connectors.kafka.producer import CheckedProducer
from dataflows.flows.routing import to_outbound
from dataflows.ops.signing import Signer, caller_name, caller_token
from dataflows.settings import Settings
from risk.domain import ModelAction, ModelCommand
from risk.domain.ids import stable_id
from sinks.query import format_table, query

LIST_SQL = """
SELECT instrument, model, argMax(role, ts_event) AS role,
       argMax(n_labelled, ts_event) AS labels,
       round(argMax(`values`['rolling_accuracy'], ts_event), 4) AS rolling_accuracy,
       argMax(memory_bytes, ts_event) AS memory_bytes,
       argMax(version_id, ts_event) AS version_id,
       argMax(detail, ts_event) AS detail,
       max(ts_event) AS as_of
FROM model_metrics FINAL
{where}
GROUP BY instrument, model
ORDER BY instrument, role DESC, model
"""

VERSIONS_SQL = """
SELECT instrument, version_id, factory, params, params_hash, code_version, parent, created_at
FROM model_versions FINAL
WHERE model = {model} {and_instrument}
ORDER BY instrument, created_at
"""

METRICS_SQL = """
SELECT instrument, argMax(role, ts_event) AS role, argMax(n_labelled, ts_event) AS labels,
       argMax(`values`, ts_event) AS metrics, max(ts_event) AS as_of
FROM model_metrics FINAL
WHERE model = {model} {and_instrument}
GROUP BY instrument
ORDER BY instrument
"""

AUDIT_SQL = """
SELECT ts_event, actor, action, subject, reason, detail
FROM audit FINAL
WHERE startsWith(action, 'model_') AND (subject = {model} OR detail LIKE {previous})
ORDER BY ts_event
"""


def quoted(value: str) -> str:
    """A ClickHouse string literal.

    >>> quoted("it's")
    "'it\\\\'s'"
    """
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _select(settings: Settings, sql: str) -> str:
    columns, rows = query(settings.clickhouse.url.reveal(), sql)
    return format_table(columns, rows)


def list_models(settings: Settings, instrument: str = "") -> str:
    """Every model per instrument with its role and latest scores, as a table."""
    where = f"WHERE instrument = {quoted(instrument)}" if instrument else ""
    return _select(settings, LIST_SQL.format(where=where))


def show_model(settings: Settings, model: str, instrument: str = "") -> str:
    """A model's versions, latest metrics per instrument and its promotion history."""
    names = {
        "model": quoted(model),
        "and_instrument": f"AND instrument = {quoted(instrument)}" if instrument else "",
        "previous": quoted(f'%"previous": "{model}"%'),
    }
    return "\n\n".join(
        f"{title}\n{_select(settings, sql.format(**names))}"
        for title, sql in (
            ("versions", VERSIONS_SQL),
            ("latest metrics", METRICS_SQL),
            ("promotions and rollbacks", AUDIT_SQL),
        )
    )


def model_command(
    action: ModelAction, *, model: str, instrument: str, actor: str, reason: str
) -> ModelCommand:
    """A command stamped with the wall clock now (the operator's action time)."""
    now = time.time_ns()
    return ModelCommand(
        command_id=stable_id("model_command", action, model, instrument, actor, now),
        action=action,
        model=model,
        instrument=instrument,
        actor=actor,
        reason=reason,
        ts_event=now,
        ts_init=now,
    )


def send_command(settings: Settings, command: ModelCommand, token: str | None = None) -> None:
    """Produce `command` to `hfl.models.control`, signed with `token` (default: the
    configured API key, whose name becomes the actor), and wait for the acknowledgement."""
    caller = caller_token(settings, token)
    command = replace(command, actor=caller_name(settings, caller))
    kafka = settings.kafka
    records = to_outbound(kafka.topic_prefix)([command])
    producer = CheckedProducer(kafka.bootstrap, message_timeout_ms=kafka.message_timeout_ms)
    producer.send(Signer(settings, caller).sign(record for _, record in records))
