"""`lockstock stock ...` and `lockstock channel ...`: operator commands on the stock pool.

Commands are checked here first (the same rules the engine applies, so a bad split is refused
before anything is sent), then sent as InventoryCommand records on lockstock.inventory.commands.
`stock show` / `stock list` read the live state from a running worker's web view.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from datetime import datetime, timezone
from typing import Any

import click

from apps.cli import cli
from apps.cli.options import echo_table, require_cluster, settings_options
from apps.client import LockstockClient
from apps.supervise import fetch_json
from lockstock.catalog import Catalog
from lockstock.clock import now_ms
from lockstock.errors import SettingsError
from lockstock.kafka import kafka_for
from lockstock.settings import Settings, parse_int
from streams.engine.automation import FLEX
from streams.engine.commands import CommandError, plan_split

_PAIR = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*=\s*(-?\d+)\s*$")
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")


def parse_pairs(text: str, option: str) -> dict[str, int]:
    """``US=1200,EU=1000`` -> {"US": 1200, "EU": 1000}, or a clear error."""
    pairs: dict[str, int] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        match = _PAIR.match(item)
        if not match:
            raise SettingsError(f"{option}: {item!r} is not NAME=UNITS (example: US=1200,EU=1000)")
        name, units = match.group(1), int(match.group(2))
        if name in pairs:
            raise SettingsError(f"{option}: {name} given twice")
        if units < 0:
            raise SettingsError(f"{option}: {name} must be >= 0 units, got {units}")
        pairs[name] = units
    return pairs


def parse_eta(text: str) -> int:
    """An arrival time: ISO 8601 (UTC unless it says otherwise) or relative (90m, 36h, 2d)."""
    relative = _RELATIVE.match(text)
    if relative:
        seconds = float(relative.group(1)) * {"m": 60, "h": 3600, "d": 86400}[relative.group(2)]
        return now_ms() + int(seconds * 1000)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SettingsError(f"--eta {text!r} is neither ISO 8601 (2026-11-26T08:00) nor relative (36h, 90m, 2d)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1000)


def parse_pct(text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{option} must be a number 0-100, got {text!r}") from None
    if not 0 <= value <= 100:
        raise SettingsError(f"{option} must be 0-100, got {value:g}")
    return value


def _region(text: str | None, catalog: Catalog, option: str) -> str | None:
    if text is None or text == FLEX or text in catalog.regions:
        return text
    raise SettingsError(f"{option}: unknown region {text!r}; configured: {', '.join(catalog.regions)} (or {FLEX})")


def _send(settings: Settings, sku: str, kind: str, **fields: Any) -> dict:
    require_cluster(settings, "send a command")
    with kafka_for(settings) as kafka:
        client = LockstockClient(kafka)
        command = client.command(sku, kind, issued_by="cli", **fields)
        client.flush()
    return command


def _report_sent(command: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(command, indent=2, default=str))
    else:
        click.echo(f"sent {command['type']} for {command['sku']} (command {command['command_id']})")


def worker_json(settings: Settings, worker_url: str | None, path: str) -> Any:
    """GET a worker web view; a clear error when no worker answers."""
    base = (worker_url or f"http://{settings.web_host}:{settings.web_port}").rstrip("/")
    url = base + path
    try:
        status, body = fetch_json(url, timeout=5)
    except OSError as exc:  # URLError is an OSError
        raise click.ClickException(
            f"no lockstock worker answers at {base} ({getattr(exc, 'reason', exc)}); start one with "
            "`lockstock worker` or pass --worker-url"
        ) from None
    except ValueError:
        raise click.ClickException(f"{url} did not answer with JSON; is that a lockstock worker?") from None
    if status != 200:
        message = body.get("error") if isinstance(body, dict) else None
        raise click.ClickException(f"{url}: {message or 'request failed'} (HTTP {status})")
    return body


worker_url_option = click.option("--worker-url", envvar="LOCKSTOCK_WORKER_URL",
                                 help="A worker's web address [env LOCKSTOCK_WORKER_URL; default from --web-port 6066].")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@cli.group()
def stock() -> None:
    """Set, restock, move and inspect the stock pool of a SKU."""


@stock.command("set")
@settings_options
@click.argument("sku")
@click.option("--total", required=True, help="Units in the pool.")
@click.option("--regions", default="", help="Allocation per region, e.g. US=1200,EU=1000,SEA=800 (default: by catalog weights).")
@click.option("--flex-pct", default=None, help="Share of total held back as the flex pool, 0-100 (default: rules.flex_pct).")
@click.option("--proportional", is_flag=True, help="Scale the given regions down to fit instead of refusing.")
@click.option("--warehouses", default="", help="On-hand units per warehouse, e.g. LA=700,NJ=500,RTM=1000,KUL=800.")
@json_option
def set_(settings: Settings, sku: str, total: str, regions: str, flex_pct: str | None, proportional: bool,
         warehouses: str, as_json: bool) -> None:
    """Set a SKU's total and its split over regions and the flex pool.

    Allocations plus the flex pool may never exceed the total: 1200+1000+800 with 20 % flex on
    3000 units is refused with the numbers, unless --proportional asks to scale them.
    """
    catalog = settings.catalog()
    units = parse_int(total, "--total", minimum=0, maximum=10**9)
    pct = catalog.rules.flex_pct if flex_pct is None else parse_pct(flex_pct, "--flex-pct")
    asked = parse_pairs(regions, "--regions")
    try:
        split, flex = plan_split(units, asked, pct, catalog, proportional)
    except CommandError as exc:
        raise click.ClickException(str(exc)) from None
    counts = parse_pairs(warehouses, "--warehouses")
    command = _send(settings, sku, "SET_STOCK", total=units, regions=split, flex_pct=pct, warehouses=counts)
    if as_json:
        _report_sent(command, True)
        return
    echo_table([{"region": r, "allocation": n} for r, n in split.items()] + [{"region": FLEX, "allocation": flex}],
               ["region", "allocation"])
    _report_sent(command, False)


@stock.command("restock")
@settings_options
@click.argument("sku")
@click.option("--qty", help="Units arrived or on the way (> 0); with --transit-id, the count actually received.")
@click.option("--region", help=f"Region the units go to (default: {FLEX}).")
@click.option("--warehouse", help="Warehouse receiving them (default: the region's first).")
@click.option("--eta", help="Still in transit: arrival as ISO 8601 or relative (36h). Not sellable until received.")
@click.option("--transit-id", help="A shipment in transit (its command id) has arrived.")
@json_option
def restock(settings: Settings, sku: str, qty: str | None, region: str | None, warehouse: str | None,
            eta: str | None, transit_id: str | None, as_json: bool) -> None:
    """Add stock that arrived, record stock in transit (--eta), or receive a transit (--transit-id)."""
    catalog = settings.catalog()
    if transit_id is None and qty is None:
        raise click.ClickException("give --qty (stock arrived or in transit) or --transit-id (a transit arrived)")
    fields: dict[str, Any] = {
        "quantity": None if qty is None else parse_int(qty, "--qty", minimum=1, maximum=10**9),
        "region": _region(region, catalog, "--region"), "warehouse": warehouse, "transit_id": transit_id,
        "eta": None if eta is None else parse_eta(eta),
    }
    if warehouse is not None and catalog.warehouse_region(warehouse) is None:
        raise click.ClickException(f"--warehouse: unknown warehouse {warehouse!r}")
    _report_sent(_send(settings, sku, "RESTOCK", **fields), as_json)


@stock.command("transfer")
@settings_options
@click.argument("sku")
@click.option("--qty", required=True, help="Free units to move (> 0).")
@click.option("--from", "source", required=True, help=f"Region (or {FLEX}) giving units.")
@click.option("--to", "target", required=True, help=f"Region (or {FLEX}) receiving them.")
@json_option
def transfer(settings: Settings, sku: str, qty: str, source: str, target: str, as_json: bool) -> None:
    """Move free (unlocked) units between regions or the flex pool."""
    catalog = settings.catalog()
    units = parse_int(qty, "--qty", minimum=1, maximum=10**9)
    source, target = _region(source, catalog, "--from"), _region(target, catalog, "--to")
    if source == target:
        raise click.ClickException("--from and --to are the same")
    _report_sent(_send(settings, sku, "TRANSFER", quantity=units, region=source, to_region=target), as_json)


@stock.command("adjust")
@settings_options
@click.argument("sku")
@click.option("--qty", required=True, help="Units found (+N) or lost (-N); not 0.")
@click.option("--region", help=f"Region whose count is corrected (default: {FLEX}).")
@click.option("--warehouse", help="Warehouse whose count is corrected (default: the region's first).")
@click.option("--reason", required=True, help="Why (kept with the command, e.g. 'cycle count 2026-11-24').")
@json_option
def adjust(settings: Settings, sku: str, qty: str, region: str | None, warehouse: str | None, reason: str,
           as_json: bool) -> None:
    """Correct a count: units found or lost."""
    catalog = settings.catalog()
    units = parse_int(qty, "--qty", minimum=-10**9, maximum=10**9)
    if units == 0:
        raise click.ClickException("--qty must not be 0")
    fields = {"quantity": units, "region": _region(region, catalog, "--region"), "warehouse": warehouse, "reason": reason}
    _report_sent(_send(settings, sku, "ADJUST", **fields), as_json)


@stock.command("limit")
@settings_options
@click.argument("sku")
@click.option("--per-buyer", help="Units each buyer may hold of this SKU, across all channels (>= 1).")
@click.option("--clear", is_flag=True, help="Lift the purchase limit.")
@json_option
def limit(settings: Settings, sku: str, per_buyer: str | None, clear: bool, as_json: bool) -> None:
    """Set or lift a per-buyer purchase limit."""
    if clear == (per_buyer is not None):
        raise click.ClickException("give exactly one of --per-buyer N or --clear")
    if clear:
        _report_sent(_send(settings, sku, "CLEAR_PURCHASE_LIMIT"), as_json)
    else:
        units = parse_int(per_buyer, "--per-buyer", minimum=1, maximum=10**6)
        _report_sent(_send(settings, sku, "SET_PURCHASE_LIMIT", buyer_limit=units), as_json)


@stock.command("show")
@settings_options
@worker_url_option
@click.argument("sku")
@json_option
def show(settings: Settings, worker_url: str | None, sku: str, as_json: bool) -> None:
    """A SKU's live state, read from the worker that owns it."""
    view = worker_json(settings, worker_url, f"/stock/{urllib.parse.quote(sku, safe='')}/")
    if as_json:
        click.echo(json.dumps(view, indent=2))
        return
    click.echo(
        f"{view['sku']}: total {view['total']}, available {view['available']}, flex {view['flex']}, "
        f"locked {view['locked']}, paid {view['paid']}, shipped {view['shipped']}; "
        f"buyer limit {view['buyer_limit'] or 'none'}; paused {', '.join(view['paused_channels']) or 'none'}"
    )
    echo_table([{"region": r, **v} for r, v in view["regions"].items()],
               ["region", "allocation", "locked", "paid", "shipped", "free", "in_transit"])
    if view["in_transit"]:
        echo_table(view["in_transit"], ["id", "qty", "region", "warehouse", "eta"])


@stock.command("list")
@settings_options
@worker_url_option
@json_option
def list_(settings: Settings, worker_url: str | None, as_json: bool) -> None:
    """Every SKU the worker holds (all SKUs when one worker runs)."""
    view = worker_json(settings, worker_url, "/stock/")
    if as_json:
        click.echo(json.dumps(view, indent=2))
        return
    echo_table(view["skus"], ["sku", "total", "available", "flex", "locked", "paid", "shipped", "buyer_limit"])


@cli.group()
def channel() -> None:
    """Pause or resume a channel's sales of some SKUs."""


def _channel_command(kind: str):
    @settings_options
    @click.argument("channel_id")
    @click.option("--sku", "skus", multiple=True, required=True, help="SKU to pause/resume (repeatable).")
    @json_option
    def command(settings: Settings, channel_id: str, skus: tuple[str, ...], as_json: bool) -> None:
        catalog = settings.catalog()
        if channel_id not in catalog.channels:
            raise click.ClickException(f"unknown channel {channel_id!r}; configured: {', '.join(catalog.channels)}")
        for sku in skus:
            _report_sent(_send(settings, sku, kind, channel=channel_id), as_json)

    return command


channel.command("pause", help="Stop a channel from locking these SKUs (it shows 0).")(_channel_command("PAUSE_CHANNEL"))
channel.command("resume", help="Let a paused channel sell these SKUs again.")(_channel_command("RESUME_CHANNEL"))
