"""Settings from the environment, overridable by CLI flags, validated once at startup.

Every value a user gives is checked here so that a typo is a one-line error at startup,
not a stack trace from deep inside a Kafka client later.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Mapping
from urllib.parse import urlparse

from lockstock.errors import SettingsError

if TYPE_CHECKING:
    from lockstock.catalog import Catalog

PROFILES = ("auto", "kafka", "embedded")
_TOPIC_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")
_HOST = re.compile(r"^[A-Za-z0-9._-]+$|^\[[0-9A-Fa-f:]+\]$")

# Environment variable for each setting; the CLI flags mirror them.
ENV = {
    "bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "schema_registry_url": "SCHEMA_REGISTRY_URL",
    "data_dir": "LOCKSTOCK_DATA_DIR",
    "topic_prefix": "LOCKSTOCK_TOPIC_PREFIX",
    "partitions": "LOCKSTOCK_PARTITIONS",
    "replication_factor": "LOCKSTOCK_REPLICATION_FACTOR",
    "broker_profile": "LOCKSTOCK_BROKER_PROFILE",
    "app_id": "LOCKSTOCK_APP_ID",
    "web_host": "LOCKSTOCK_WEB_HOST",
    "web_port": "LOCKSTOCK_WEB_PORT",
    "channels_file": "LOCKSTOCK_CHANNELS_FILE",
    "group_session_timeout_s": "LOCKSTOCK_GROUP_SESSION_TIMEOUT_S",
}


def parse_port(value: object, name: str = "port", *, allow_zero: bool = False) -> int:
    """A TCP port 1..65535 (0 = pick a free one, where allowed)."""
    number = parse_int(value, name, minimum=0 if allow_zero else 1, maximum=65535)
    return number


def parse_int(value: object, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool):
        raise SettingsError(f"{name} must be a whole number, got {value!r}")
    try:
        number = int(str(value).strip(), 10)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise SettingsError(f"{name} must be <= {maximum}, got {number}")
    return number


def parse_bootstrap(value: str) -> str:
    """A comma-separated list of host:port, returned normalised (no spaces, no scheme)."""
    servers = []
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            continue
        for scheme in ("PLAINTEXT://", "SSL://", "SASL_SSL://", "SASL_PLAINTEXT://", "kafka://"):
            if item.upper().startswith(scheme.upper()):
                item = item[len(scheme):]
        host, sep, port = item.rpartition(":")
        if not sep or not host or not _HOST.match(host):
            raise SettingsError(
                f"KAFKA_BOOTSTRAP_SERVERS entry {raw.strip()!r} is not host:port "
                "(example: localhost:9092,broker2:9092)"
            )
        parse_port(port, f"port in KAFKA_BOOTSTRAP_SERVERS entry {raw.strip()!r}")
        servers.append(f"{host}:{int(port)}")
    if not servers:
        raise SettingsError("KAFKA_BOOTSTRAP_SERVERS is set but empty; unset it to use the embedded broker")
    return ",".join(servers)


def parse_registry_url(value: str) -> str:
    url = value.strip()
    parsed = urlparse(url)
    if parsed.scheme == "mock" or (parsed.scheme in ("http", "https") and parsed.netloc):
        return url.rstrip("/")
    raise SettingsError(f"SCHEMA_REGISTRY_URL must be http(s)://host:port (or mock:// in tests), got {value!r}")


@dataclass(frozen=True)
class Settings:
    """Where lockstock finds Kafka and keeps its state. Build with :meth:`from_env`."""

    bootstrap_servers: str | None = None  # None: start and use the embedded broker
    schema_registry_url: str | None = None  # None: Avro single-object encoding
    data_dir: Path = field(default_factory=lambda: Path(".lockstock"))
    topic_prefix: str = "lockstock"
    partitions: int = 4
    replication_factor: int = 1
    broker_profile: str = "auto"  # auto: detect the embedded broker by its cluster id
    app_id: str = "lockstock"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    channels_file: Path | None = None  # None: the packaged catalog (lockstock/catalog.yaml)
    # How long a silent worker keeps its partitions before the group hands them to another one:
    # Faust's 60 s default would stop a dead worker's SKUs for a minute of a flash sale. Apache
    # Kafka refuses less than its group.min.session.timeout.ms (6 s by default).
    group_session_timeout_s: int = 10

    def __post_init__(self) -> None:
        if self.bootstrap_servers is not None:
            object.__setattr__(self, "bootstrap_servers", parse_bootstrap(self.bootstrap_servers))
        if self.schema_registry_url is not None:
            object.__setattr__(self, "schema_registry_url", parse_registry_url(self.schema_registry_url))
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if not _TOPIC_PREFIX.match(self.topic_prefix):
            raise SettingsError(
                f"topic prefix {self.topic_prefix!r} may hold only letters, digits, '.', '_' and '-'"
            )
        if not _TOPIC_PREFIX.match(self.app_id):
            raise SettingsError(f"app id {self.app_id!r} may hold only letters, digits, '.', '_' and '-'")
        object.__setattr__(self, "partitions", parse_int(self.partitions, "partitions", minimum=1, maximum=1024))
        object.__setattr__(
            self, "replication_factor", parse_int(self.replication_factor, "replication factor", minimum=1, maximum=16)
        )
        if self.broker_profile not in PROFILES:
            raise SettingsError(f"broker profile must be one of {', '.join(PROFILES)}, got {self.broker_profile!r}")
        if self.channels_file is not None:
            object.__setattr__(self, "channels_file", Path(self.channels_file))
        object.__setattr__(self, "web_port", parse_port(self.web_port, "web port", allow_zero=True))
        object.__setattr__(self, "group_session_timeout_s", parse_int(
            self.group_session_timeout_s, "group session timeout (s)", minimum=6, maximum=1800))
        if not _HOST.match(self.web_host):
            raise SettingsError(f"web host {self.web_host!r} is not a host name or address")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> "Settings":
        """Read the environment, then apply CLI overrides (``None`` means: not given)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for name, variable in ENV.items():
            raw = env.get(variable)
            if raw is not None and raw.strip() != "":
                values[name] = raw.strip()
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - set(ENV)
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return cls(**values)  # type: ignore[arg-type]

    def with_(self, **changes: object) -> "Settings":
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def embedded(self) -> bool:
        """True when no cluster is configured and lockstock must start its own broker."""
        return self.bootstrap_servers is None

    def catalog(self) -> "Catalog":
        """The channel catalog these settings name (validated; SettingsError if it is not)."""
        from lockstock.catalog import load_catalog

        return load_catalog(self.channels_file)

    def as_env(self) -> dict[str, str]:
        """The environment that reproduces these settings in a child process."""
        env = {}
        for name, variable in ENV.items():
            value = getattr(self, name)
            if value is not None:
                env[variable] = str(value)
        return env
