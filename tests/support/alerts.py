"""Alerts as the dashboard's alert engine raises them, for the gate's tests."""

from __future__ import annotations

from risk.domain import Alert, AlertSeverity


def make_alert(name: str, subject: str, ts: int) -> Alert:
    """Alert `name` about `subject` (an instrument, an account, a topic) at `ts`."""
    return Alert(
        alert_id=f"a-{name}-{subject}-{ts}",
        name=name,
        severity=AlertSeverity.WARNING,
        source="test",
        subject=subject,
        message="m",
        ts_event=ts,
        ts_init=ts,
    )
