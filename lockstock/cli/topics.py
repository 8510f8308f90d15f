"""`lockstock topics create|list`."""

from __future__ import annotations

import json

import click

from lockstock.cli import cli
from lockstock.cli.options import echo_table, require_cluster, settings_options
from lockstock.kafka import kafka_for
from lockstock.settings import Settings
from lockstock.topics import ALL, Topics, changelog_topics


@cli.group()
def topics() -> None:
    """Provision and describe lockstock's topics (the public interface)."""


def _rows(settings: Settings, status: dict[str, str] | None = None) -> list[dict]:
    rows = []
    for name, spec in Topics(settings.topic_prefix):
        rows.append({
            "topic": name, "key": spec.key, "value": ",".join(spec.value_schemas),
            "partitions": settings.partitions, "cleanup": spec.cleanup_policy,
            "retention_days": "-" if spec.retention_ms is None else spec.retention_ms // 86_400_000,
            "internal": spec.internal, "status": (status or {}).get(name, ""), "description": spec.description,
        })
    for name, source in changelog_topics(settings.app_id).items():
        rows.append({
            "topic": name, "key": "table key", "value": "json (Faust changelog)", "partitions": settings.partitions,
            "cleanup": "compact", "retention_days": "-", "internal": True, "status": "created by worker",
            "description": f"Faust table changelog, co-partitioned with {source.name(settings.topic_prefix)}",
        })
    return rows


@topics.command("create")
@settings_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def create(settings: Settings, as_json: bool) -> None:
    """Create every lockstock topic that is missing (idempotent; checks partition counts)."""
    require_cluster(settings, "create topics that outlive this command")
    with kafka_for(settings) as kafka:
        results = kafka.create_topics(ALL)
    rows = _rows(settings, {name: status for name, _, status in results})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        echo_table(rows, ["topic", "partitions", "cleanup", "status"])


@topics.command("list")
@settings_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_(settings: Settings, as_json: bool) -> None:
    """Describe every topic: key, value schema, partitions, cleanup policy, retention."""
    rows = _rows(settings)
    for row in rows:
        row.pop("status")
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        echo_table(rows, ["topic", "key", "value", "partitions", "cleanup", "retention_days"])
