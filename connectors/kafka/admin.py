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
    partitions: dict[str, int] | None = None,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
) -> list[str]:
    """Create every topic that does not exist yet; return the names created.

    Args:
        partitions: partition counts that replace the specs' own, by unprefixed name
            (e.g. ``{"md.ticks": 6}``).
        replication_factor: replicas of every partition (1 on one broker).
        min_insync_replicas: replicas that must acknowledge an ``acks=all`` write.
    """
    admin = AdminClient(admin_config(bootstrap))
    counts = partitions or {}
    config = {"min.insync.replicas": str(min_insync_replicas)} if min_insync_replicas > 1 else {}
    wanted = [
        NewTopic(
            prefix + spec.name,
            counts.get(spec.name, spec.partitions),
            replication_factor,
            config=config,
        )
        for spec in specs
    ]
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
