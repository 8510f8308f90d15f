"""`lockstock audit verify [SKU]`: replay the audit hash chains and report the first broken link.

Reads `<prefix>.inventory.audit` from its first record to its end (no consumer group), checks
every SKU's chain (streams.engine.audit.verify_chain) and anchors it to the engine's own chain
head, read from the stock table's changelog: a chain cut short at the end is caught too.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

import click

from apps.cli import cli
from apps.cli.options import echo_table, progress_line, require_cluster, settings_options
from apps.readback import read_to_end, stock_states
from lockstock.errors import BrokerError, CodecError
from lockstock.kafka import kafka_for
from lockstock.settings import Settings, parse_int
from streams.engine.audit import ChainReport, Link, verify_chain


@cli.group()
def audit() -> None:
    """The tamper-evident record of every stock movement (a SHA-256 hash chain per SKU)."""


@audit.command()
@settings_options
@click.argument("sku", required=False)
@click.option("--timeout", default="120", show_default=True, help="Seconds allowed to read the topic (1-3600).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(settings: Settings, sku: str | None, timeout: str, as_json: bool) -> None:
    """Check the audit chain of SKU (default: every SKU); exit 1 at the first broken link.

    A link is broken when a record's content does not match its hash, its prev_hash is not the
    previous record's hash, a seq is skipped or repeated with other content, or the topic ends
    before the chain head the engine's state holds. Identical records written twice (a replay
    after a crash) are counted as duplicates, not errors.
    """
    require_cluster(settings, "verify the audit trail")
    seconds = parse_int(timeout, "--timeout", minimum=1, maximum=3600)
    with kafka_for(settings) as kafka:
        topic = kafka.topics.inventory_audit
        chains: dict[str, list[Link]] = defaultdict(list)
        for raw in read_to_end(kafka, [topic], timeout=seconds, progress=progress_line("audit records read")):
            key = (raw.key or b"").decode("utf-8", "replace")
            if sku is not None and key != sku:
                continue
            where = f"partition {raw.partition} offset {raw.offset}"
            try:
                record = kafka.codec.decode_as(raw.value, "AuditRecord", topic=topic).value
            except CodecError as exc:
                chains[key].append(Link({}, where, error=f"undecodable record: {exc}"))
                continue
            chains[key].append(Link(record, where))
        try:
            heads = {name: (state.audit_seq, state.audit_head) for name, state in stock_states(kafka, timeout=seconds).items()}
            anchored = True
        except BrokerError:  # no worker has written state under this app id yet
            heads, anchored = {}, False
    names = [sku] if sku is not None else sorted(set(chains) | {n for n, (seq, _) in heads.items() if seq})
    reports = [verify_chain(name, chains.get(name, []), state_head=heads.get(name)) for name in names]
    if sku is not None and not chains.get(sku) and sku not in heads:
        raise click.ClickException(f"no audit records and no state for SKU {sku!r}")
    _print(reports, anchored, as_json)
    if not all(r.ok for r in reports):
        sys.exit(1)


def _print(reports: list[ChainReport], anchored: bool, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"anchored_to_state": anchored, "ok": all(r.ok for r in reports),
                               "skus": [r.as_dict() for r in reports]}, indent=2))
        return
    echo_table([{
        "sku": r.sku, "records": r.records, "head_seq": r.head_seq, "duplicates": r.duplicates,
        "status": "ok" if r.ok else f"BROKEN at seq {r.broken_seq}" + (f" ({r.broken_where})" if r.broken_where else ""),
    } for r in reports], ["sku", "records", "head_seq", "duplicates", "status"])
    for r in reports:
        if not r.ok:
            click.echo(f"{r.sku}: {r.broken}")
    if not anchored:
        click.echo("note: no engine state found under this app id; chains checked without their head anchor")
    click.echo(f"{sum(r.ok for r in reports)} of {len(reports)} chains intact")
