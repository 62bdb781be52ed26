"""Docker-mode security config: Kafka client settings, per-component ACLs, ClickHouse grants."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from connectors import topic
from connectors.kafka import security
from connectors.kafka.acl import ACCESS, render_script
from connectors.kafka.producer import producer_config
from connectors.kafka.security import KafkaSecurity, client_config
from connectors.kafka.source import consumer_config

ROOT = Path(__file__).resolve().parents[3]
SCRAM = KafkaSecurity(
    protocol="SASL_SSL", username="hfl-trading", password="pw-123456", ca_file="/run/ca.pem"
)


def test_sasl_ssl_client_config_names_every_librdkafka_setting() -> None:
    assert client_config(SCRAM) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "hfl-trading",
        "sasl.password": "pw-123456",
        "ssl.ca.location": "/run/ca.pem",
        "ssl.endpoint.identification.algorithm": "https",
    }
    assert "pw-123456" not in repr(SCRAM)


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (KafkaSecurity(protocol="SASL"), "protocol"),
        (KafkaSecurity(protocol="SASL_PLAINTEXT", username="u"), "username and a password"),
        (KafkaSecurity(protocol="SSL"), "ca_file"),
        (KafkaSecurity(protocol="SSL", ca_file="c", cert_file="x"), "go together"),
    ],
)
def test_unusable_security_is_refused_with_its_problem(config: KafkaSecurity, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        security.use(config)


def test_declared_security_reaches_producers_consumers_and_admins() -> None:
    security.use(SCRAM)
    try:
        for config in (
            producer_config("kafka:9093"),
            consumer_config("kafka:9093", "hfl-trading"),
            security.admin_config("kafka:9093"),
        ):
            assert config["security.protocol"] == "SASL_SSL"
            assert config["sasl.username"] == "hfl-trading"
    finally:
        security.use(KafkaSecurity())
    assert "security.protocol" not in producer_config("127.0.0.1:9092")


def test_dashboard_and_operators_may_only_write_commands_alerts_and_audit() -> None:
    assert ACCESS["dashboard"].reads == ()
    assert set(ACCESS["dashboard"].writes) == {topic.CONTROL, topic.ALERTS, topic.AUDIT}
    assert set(ACCESS["operator"].writes) == {topic.CONTROL, topic.MODEL_CONTROL, topic.AUDIT}
    assert topic.ORDERS not in ACCESS["dashboard"].writes + ACCESS["operator"].writes


def test_only_trading_writes_orders_and_only_the_gateway_writes_fills() -> None:
    writers = {name for name, access in ACCESS.items() if topic.ORDERS in access.writes}
    assert writers == {"trading"}
    writers = {name for name, access in ACCESS.items() if topic.FILLS in access.writes}
    assert writers == {"gateway"}
    assert topic.CONTROL not in ACCESS["gateway"].reads


def test_trading_may_write_every_topic_its_outputs_route_to() -> None:
    from dataflows.flows.routing import ROUTES

    routed = {route[0] for route in ROUTES.values()} - {topic.CONTROL, topic.MODEL_CONTROL}
    assert routed - set(ACCESS["trading"].writes) <= {topic.FILLS, topic.ORDER_EVENTS}


def test_generated_acl_script_is_up_to_date() -> None:
    assert (ROOT / "docker/kafka/acls.sh").read_text() == render_script()


USERS = ROOT / "docker/clickhouse/users.d/users.xml"


def _grants() -> dict[str, list[str]]:
    users = ET.parse(USERS).getroot().find("users")
    assert users is not None
    return {
        user.tag: [q.text or "" for q in user.iter("query")]
        for user in users
        if user.tag != "default"
    }


def test_clickhouse_users_have_least_privilege() -> None:
    grants = _grants()
    assert set(grants) == {"hfl_migrate", "hfl_persist", "hfl_dashboard", "hfl_sql"}
    assert grants["hfl_persist"] == ["GRANT INSERT, SELECT ON hfl.*"]
    assert grants["hfl_dashboard"] == grants["hfl_sql"] == ["GRANT SELECT ON hfl.*"]
    forbidden = ("FILE", "URL", "REMOTE", "S3", "SOURCES", "SYSTEM", "KILL", "ACCESS", "ALL", "*.*")
    for user, queries in grants.items():
        for query in queries:
            assert " ON hfl.*" in query, (user, query)
            assert not any(f" {word}" in query.upper() for word in forbidden[:8]), (user, query)
            assert "*.*" not in query


def test_clickhouse_passwords_come_from_the_environment_only() -> None:
    users = ET.parse(USERS).getroot().find("users")
    assert users is not None
    for user in users:
        if user.tag == "default":
            continue
        password = user.find("password")
        assert password is not None and password.get("from_env", "").startswith("HFL_CH_")
        assert not (password.text or "").strip()
