"""CLI flags shared by every command that talks to Kafka; they override the environment."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any, Callable

import click

from lockstock.settings import PROFILES, Settings


def settings_options(command: Callable) -> Callable:
    @click.option("--bootstrap-servers", envvar=None, help="Kafka host:port list [env KAFKA_BOOTSTRAP_SERVERS; unset: embedded broker].")
    @click.option("--schema-registry-url", help="Use the Confluent wire format via this registry [env SCHEMA_REGISTRY_URL].")
    @click.option("--data-dir", type=click.Path(path_type=Path), help="State stores [env LOCKSTOCK_DATA_DIR, default ./.lockstock].")
    @click.option("--topic-prefix", help="Topic name prefix [env LOCKSTOCK_TOPIC_PREFIX, default lockstock].")
    @click.option("--partitions", help="Partitions per topic, 1-1024 [env LOCKSTOCK_PARTITIONS, default 4].")
    @click.option("--broker-profile", type=click.Choice(PROFILES), help="auto (default), kafka or embedded [env LOCKSTOCK_BROKER_PROFILE].")
    @click.option("--channels-file", type=click.Path(path_type=Path), help="Regions, channels and rules (YAML) [env LOCKSTOCK_CHANNELS_FILE; default: built-in].")
    @functools.wraps(command)
    def wrapper(*args: Any, bootstrap_servers=None, schema_registry_url=None, data_dir=None,
                topic_prefix=None, partitions=None, broker_profile=None, channels_file=None, **kwargs: Any):
        settings = Settings.from_env(
            bootstrap_servers=bootstrap_servers, schema_registry_url=schema_registry_url, data_dir=data_dir,
            topic_prefix=topic_prefix, partitions=partitions, broker_profile=broker_profile,
            channels_file=channels_file,
        )
        return command(*args, settings=settings, **kwargs)

    return wrapper


def echo_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A plain aligned table for people; --json is for machines."""
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    click.echo("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        click.echo("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns).rstrip())


def progress_line(what: str) -> Callable[[int, int], None]:
    """``report(done, total)`` for long reads: a line on stderr at most once a second and at the
    end (stdout stays clean for --json)."""
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0 or done >= total:
            last[0] = now
            click.echo(f"{what}: {done}/{total}", err=True)

    return report


def require_cluster(settings: Settings, what: str) -> None:
    """Commands whose effect must outlive them refuse to run against a throwaway embedded broker."""
    if settings.embedded:
        raise click.ClickException(
            f"KAFKA_BOOTSTRAP_SERVERS is not set: cannot {what} on a throwaway embedded broker. "
            "Start one with `lockstock broker` and export KAFKA_BOOTSTRAP_SERVERS."
        )
