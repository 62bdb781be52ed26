"""What the dashboard writes to Kafka itself: the alerts of its alert engine and the
audit rows of the requests it refused.

Kill and resume go through the same function as `hfl kill`/`hfl resume`
(`dataflows.ops.control.publish_control`), handed to the app as a callable.
"""

from __future__ import annotations

from collections.abc import Sequence

from connectors import topic
from connectors.codec import encode
from connectors.kafka.producer import CheckedProducer
from connectors.kafka.record import OutboundRecord
from risk.domain.control import Alert, AuditEvent


class Publisher:
    """Produce alerts to `hfl.alerts`, keyed by name, with checked delivery."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self._producer = CheckedProducer(bootstrap, message_timeout_ms=10_000)
        self._topic = prefix + topic.ALERTS
        self._audit_topic = prefix + topic.AUDIT

    def publish(self, alerts: Sequence[Alert]) -> None:
        """Send `alerts` and return once the broker acknowledged all of them."""
        self._producer.send(
            [OutboundRecord(self._topic, alert.name.encode(), encode(alert)) for alert in alerts]
        )

    def audit(self, event: AuditEvent) -> None:
        """Send one audit event and return once the broker acknowledged it."""
        record = OutboundRecord(self._audit_topic, event.subject.encode(), encode(event))
        self._producer.send([record])
