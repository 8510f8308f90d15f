"""Static checks of docker-compose.yml and the Dockerfile (no Docker engine needed).

They parse the files and check the wiring between services: the addresses lockstock is
given match what Kafka and the Schema Registry advertise, start-up order, the worker's
state volume, health checks and ports, and that only settings lockstock knows are set.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from connectors.amazon import AWS_CREDENTIAL_ENV
from connectors.base import REGISTRY
from connectors.config import load_adapters

from lockstock.settings import ENV, Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"

LOCKSTOCK_SERVICES = ("init", "worker", "gateway", "sync")
load_adapters()
# What the connectors read, from the adapters themselves (webhook secrets, API credentials, AWS).
GATEWAY_SECRETS = tuple(sorted({cls.secret_env for cls in REGISTRY.webhooks.values()}))
CONNECTOR_CREDENTIALS = ({v for cls in REGISTRY.pushers.values() for v in cls.credential_env.values()}
                         | set(AWS_CREDENTIAL_ENV.values()))
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|(^|_)KEY($|_)")
# ${VAR}, ${VAR:-}, ${VAR-}, ${VAR:?message}: taken from the host, never a literal value.
SUBSTITUTION = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(:?-|(:?\?[^}]*))?\}$")


# --- helpers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def service(compose: dict, name: str) -> dict:
    return compose["services"][name]


def env_of(svc: dict) -> dict[str, str]:
    """A service's environment as name -> value, from either the mapping or the list form."""
    raw = svc.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
    return {str(k): ("" if v is None else str(v)) for k, v in raw.items()}


def depends_on(svc: dict) -> dict[str, str]:
    """A service's dependencies as name -> condition (the list form means service_started)."""
    raw = svc.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """'NAME://host:port,...' -> {NAME: (host, port)}."""
    result = {}
    for item in value.split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        result[name] = (host, int(port))
    return result


def host_port(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    return host, int(port)


def published_ports(svc: dict) -> set[tuple[int, int]]:
    """{(host port, container port)} from short ('[ip:]8080:8080[/tcp]') or long syntax."""
    result = set()
    for entry in svc.get("ports") or []:
        if isinstance(entry, dict):
            result.add((int(entry["published"]), int(entry["target"])))
        else:
            parts = str(entry).split("/")[0].split(":")
            result.add((int(parts[-2]), int(parts[-1])))
    return result


def volume_mounts(svc: dict) -> dict[str, str]:
    """{container path: source} from short ('src:/path[:mode]') or long syntax."""
    result = {}
    for entry in svc.get("volumes") or []:
        if isinstance(entry, dict):
            result[entry["target"]] = entry.get("source", "")
        else:
            source, target = str(entry).split(":")[:2]
            result[target] = source
    return result


def healthcheck_text(svc: dict) -> str:
    test = (svc.get("healthcheck") or {}).get("test", "")
    return " ".join(test) if isinstance(test, list) else str(test)


def command_args(svc: dict) -> list[str]:
    command = svc.get("command", "")
    return list(command) if isinstance(command, list) else shlex.split(command)


def kafka_internal_address(compose: dict) -> tuple[str, int]:
    """The advertised address of the listener other containers (and brokers) use."""
    kafka_env = env_of(service(compose, "kafka"))
    advertised = listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    return advertised[kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"]]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """[(INSTRUCTION, arguments)] with comments dropped and continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            result.append((keyword.upper(), args.strip()))
    return result


# --- tests -----------------------------------------------------------------------------


def test_all_services_are_defined(compose):
    assert {"kafka", "schema-registry", *LOCKSTOCK_SERVICES} <= set(compose["services"])


def test_kafka_is_a_single_node_kraft_broker(compose):
    kafka = service(compose, "kafka")
    kafka_env = env_of(kafka)
    assert kafka["image"].split(":")[0] == "apache/kafka"
    assert set(kafka_env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    voters = kafka_env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert [v.split("@")[0] for v in voters] == [kafka_env["KAFKA_NODE_ID"]] == ["1"]
    controller_port = listeners(kafka_env["KAFKA_LISTENERS"])[kafka_env["KAFKA_CONTROLLER_LISTENER_NAMES"]][1]
    assert voters[0].split("@")[1] == f"kafka:{controller_port}"
    assert ("kafka", 29092) in listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"]).values()
    for name in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                 "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert kafka_env[name] == "1", name
    assert "kafka-broker-api-versions.sh" in healthcheck_text(kafka)


def test_kafka_listeners_are_consistent(compose):
    kafka = service(compose, "kafka")
    kafka_env = env_of(kafka)
    bound = listeners(kafka_env["KAFKA_LISTENERS"])
    advertised = listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(item.split(":") for item in kafka_env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    for name, (_, port) in advertised.items():
        assert name in protocols, f"{name} has no security protocol"
        assert bound[name][1] == port, f"{name} advertises port {port} but binds {bound[name][1]}"
    assert kafka_env["KAFKA_CONTROLLER_LISTENER_NAMES"] in bound
    assert kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    # The host reaches the broker at localhost:<published port>, and the health check uses it.
    host_listeners = [port for host, port in advertised.values() if host == "localhost"]
    assert host_listeners, "no listener advertised for the host"
    assert all((port, port) in published_ports(kafka) for port in host_listeners)
    assert f"localhost:{host_listeners[0]}" in healthcheck_text(kafka)


def test_lockstock_services_reach_kafka_on_its_internal_listener(compose):
    expected = kafka_internal_address(compose)
    assert expected[0] == "kafka", "the in-network listener must advertise the service name"
    for name in LOCKSTOCK_SERVICES:
        servers = env_of(service(compose, name))["KAFKA_BOOTSTRAP_SERVERS"].split(",")
        assert [host_port(s) for s in servers] == [expected], name
        assert env_of(service(compose, name))["LOCKSTOCK_BROKER_PROFILE"] == "kafka", name


def test_schema_registry_is_wired_to_kafka_and_lockstock(compose):
    registry_env = env_of(service(compose, "schema-registry"))
    store = registry_env["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"].split("://")[-1]
    assert host_port(store) == kafka_internal_address(compose)
    registry_port = urlparse(registry_env["SCHEMA_REGISTRY_LISTENERS"]).port
    for name in ("worker", "gateway"):
        url = urlparse(env_of(service(compose, name))["SCHEMA_REGISTRY_URL"])
        assert (url.scheme, url.hostname, url.port) == ("http", "schema-registry", registry_port), name
    assert f"localhost:{registry_port}/subjects" in healthcheck_text(service(compose, "schema-registry"))


def test_start_up_order(compose):
    assert depends_on(service(compose, "init")) == {"kafka": "service_healthy"}
    assert depends_on(service(compose, "schema-registry"))["kafka"] == "service_healthy"
    for name in ("worker", "gateway"):
        deps = depends_on(service(compose, name))
        assert deps["kafka"] == "service_healthy", name
        assert deps["schema-registry"] == "service_healthy", name
        assert deps["init"] == "service_completed_successfully", name
    # init is one-shot: restarting it would make service_completed_successfully unreachable.
    assert service(compose, "init").get("restart", "no") == "no"


def test_lockstock_services_build_this_repo_and_run_their_command(compose):
    expected = {
        "init": ["lockstock", "topics", "create"],
        "worker": ["lockstock", "worker"],
        "gateway": ["lockstock", "gateway"],
    }
    for name, prefix in expected.items():
        svc = service(compose, name)
        build = svc["build"]
        assert (build if isinstance(build, str) else build.get("context", ".")) in (".", "./"), name
        assert command_args(svc)[: len(prefix)] == prefix, name


def test_worker_keeps_state_in_a_declared_named_volume(compose):
    worker = service(compose, "worker")
    data_dir = env_of(worker)["LOCKSTOCK_DATA_DIR"]
    source = volume_mounts(worker).get(data_dir)
    assert source, f"nothing is mounted at LOCKSTOCK_DATA_DIR={data_dir}"
    assert not source.startswith((".", "/", "~")), f"{source} is a bind mount, not a named volume"
    assert source in (compose.get("volumes") or {}), f"volume {source} is not declared"


def test_worker_health_check_and_port_match_its_web_port(compose):
    worker = service(compose, "worker")
    worker_env = env_of(worker)
    port = int(worker_env["LOCKSTOCK_WEB_PORT"])
    assert worker_env["LOCKSTOCK_WEB_HOST"] == "0.0.0.0"
    assert (port, port) in published_ports(worker)
    check = healthcheck_text(worker)
    assert f"localhost:{port}/ready/" in check
    assert "curl" not in check and "urllib.request.urlopen" in check  # the slim image has no curl


def test_gateway_health_check_and_port_match_its_command(compose):
    gateway = service(compose, "gateway")
    args = command_args(gateway)
    port = int(args[args.index("--port") + 1])
    assert (port, port) in published_ports(gateway)
    check = healthcheck_text(gateway)
    assert f"localhost:{port}/health" in check
    assert "curl" not in check and "urllib.request.urlopen" in check


def test_lockstock_services_set_only_known_variables(compose):
    known = set(ENV.values()) | set(GATEWAY_SECRETS) | CONNECTOR_CREDENTIALS
    for name in LOCKSTOCK_SERVICES:
        for variable in env_of(service(compose, name)):
            if variable.startswith("LOCKSTOCK_") or variable in ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL"):
                assert variable in known, f"{name} sets {variable}, which lockstock does not read"


def test_lockstock_service_settings_are_valid(compose):
    for name in LOCKSTOCK_SERVICES:
        settings = Settings.from_env(env_of(service(compose, name)))
        assert not settings.embedded, name


def test_gateway_passes_its_secrets_through(compose):
    gateway_env = env_of(service(compose, "gateway"))
    for variable in GATEWAY_SECRETS:
        match = SUBSTITUTION.match(gateway_env.get(variable, ""))
        assert match and match["name"] == variable, f"{variable} must be ${{{variable}:-}}"


def test_no_secret_has_a_literal_value(compose):
    for name, svc in compose["services"].items():
        for variable, value in env_of(svc).items():
            if SECRET_NAME.search(variable):
                assert SUBSTITUTION.match(value), f"{name}: {variable} has a literal value"


def test_dockerfile_installs_the_project_and_runs_as_non_root():
    instructions = dockerfile_instructions()
    assert instructions[0][0] == "FROM" and instructions[0][1].startswith("python:3.11-slim")
    runs = [args for keyword, args in instructions if keyword == "RUN"]
    assert any(re.search(r"pip install\b[^&;|]*\s(\.|/\S+)(\s|$)", run) for run in runs)
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    keywords = [keyword for keyword, _ in instructions]
    assert keywords.index("CMD") > len(keywords) - 1 - keywords[::-1].index("USER")
    cmd = next(args for keyword, args in reversed(instructions) if keyword == "CMD")
    assert cmd.replace(" ", "") == '["lockstock","worker"]'


def test_image_gives_the_user_a_writable_data_dir(compose):
    # A named volume takes its ownership from the image directory it is mounted over.
    data_dir = env_of(service(compose, "worker"))["LOCKSTOCK_DATA_DIR"]
    runs = [args for keyword, args in dockerfile_instructions() if keyword == "RUN"]
    assert any(re.search(rf"chown\b[^&;|]*\s{re.escape(data_dir)}(\s|$)", run) for run in runs)
