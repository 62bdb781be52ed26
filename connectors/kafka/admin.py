"""Topic administration."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from connectors.kafka.security import admin_config
from connectors.topic import ALL_TOPICS, TopicSpec
from risk.domain.error import HflError


def create_topics(
    bootstrap: str,
    specs: tuple[TopicSpec, ...] = ALL_TOPICS,
    *,
    prefix: str = "",
    timeout_s: float = 15.0,
) -> list[str]:
    """Create every topic that does not exist yet; return the names created."""
    admin = AdminClient(admin_config(bootstrap))
    wanted = [NewTopic(prefix + spec.name, spec.partitions, 1) for spec in specs]
    created = []
    for name, future in admin.create_topics(wanted, request_timeout=timeout_s).items():
        try:
            future.result(timeout_s)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                msg = f"creating topic {name!r} on {bootstrap} failed: {exc}"
                raise HflError(msg) from exc
    return created


def delete_topics(bootstrap: str, names: list[str], timeout_s: float = 15.0) -> None:
    """Delete topics (tests and benchmarks clean up after themselves)."""
    admin = AdminClient(admin_config(bootstrap))
    for future in admin.delete_topics(names, request_timeout=timeout_s).values():
        try:
            future.result(timeout_s)
        except KafkaException:
            continue
