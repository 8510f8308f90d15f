"""`lockstock export` and `lockstock reconcile`: the manual stock sheet for an outage, and the
sales written on it brought back in as orders afterwards.

The rules live in apps/sheet.py (pure functions); this module only moves data between
Kafka, files and those functions, and prints what happened.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any, Callable

import click

from apps.cli import cli
from apps.cli.options import echo_table, progress_line, require_cluster, settings_options
from apps.client import LockstockClient
from apps.readback import stock_states
from apps.sheet import (
    COLUMNS, REASON_HINTS, RETRY_HINT, ManualUnit, RowError, RowOutcome, SheetRow, applied_before, iso_utc, new_sheet_id,
    parse_records, parse_sheet, plan_reconcile, reconcile_outcomes, sheet_rows, sku_summary, to_csv,
    units_beyond_count,
)
from lockstock.catalog import Catalog
from lockstock.clock import now_ms
from lockstock.kafka import Kafka, kafka_for
from lockstock.reader import Reader
from lockstock.settings import Settings, parse_int

DEFAULT_TIMEOUT_S = 120
DELIVERY_TIMEOUT_S = 60.0
PAID_SUFFIX = ":paid"  # event id of the PAID event: one per order, so a re-run's is a no-op

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
path_type = click.Path(path_type=Path, dir_okay=False)


# ---------------------------------------------------------------- export


@cli.command("export")
@settings_options
@click.option("--csv", "csv_path", type=path_type, help="Write the sheet as CSV (what `reconcile --csv` reads back).")
@click.option("--xlsx", "xlsx_path", type=path_type, help="Also (or only) write it as an Excel workbook.")
@click.option("--force", is_flag=True, help="Replace an existing FILE (it may hold sales someone already entered).")
@json_option
def export(settings: Settings, csv_path: Path | None, xlsx_path: Path | None, force: bool, as_json: bool) -> None:
    """Write the manual stock sheet for an outage: one row per SKU and channel, with what the
    channel may sell now and an empty sold_offline column to fill in.

    Channels of one region share their region's free units and every region shares the flex
    pool: never sell the may_sell of two rows of one SKU as if they were separate stock.
    """
    paths = [p for p in (csv_path, xlsx_path) if p is not None]
    if not paths:
        raise click.ClickException("give --csv FILE and/or --xlsx FILE")
    if csv_path is not None and xlsx_path is not None and csv_path.resolve() == xlsx_path.resolve():
        raise click.ClickException("--csv and --xlsx name the same file")
    for path in paths:
        if path.exists() and not force:
            raise click.ClickException(f"{path} exists and may hold sales already entered; pass --force to replace it")
    catalog = settings.catalog()
    require_cluster(settings, "export the engine's stock")
    with kafka_for(settings) as kafka:
        states = stock_states(kafka, progress=progress_line("reading the engine's state (changelog records)"))
    exported_at = now_ms()
    sheet_id = new_sheet_id(exported_at, secrets.token_hex(2))
    rows = sheet_rows(states, catalog, sheet_id, exported_at)
    if csv_path is not None:
        _write_atomically(csv_path, lambda tmp: tmp.write_text(to_csv(rows), encoding="utf-8"))
    if xlsx_path is not None:
        _write_atomically(xlsx_path, lambda tmp: _write_xlsx(tmp, rows))
    summary = sku_summary(states)
    if as_json:
        click.echo(json.dumps({"sheet_id": sheet_id, "exported_at": iso_utc(exported_at),
                               "csv": str(csv_path) if csv_path else None, "xlsx": str(xlsx_path) if xlsx_path else None,
                               "rows": len(rows), "skus": summary}, indent=2))
        return
    if not states:
        click.echo("the engine holds no SKU yet: the sheet has a header only")
    else:
        echo_table(summary, ["sku", "total", "available", "reserved", "paid", "in_transit", "low_stock", "paused"])
    click.echo(f"sheet {sheet_id}: {len(rows)} rows ({len(states)} SKUs x {len(catalog.channels)} channels) "
               f"written to {', '.join(map(str, paths))}")
    click.echo("fill in sold_offline per row during the outage; afterwards: "
               f"lockstock reconcile --{'csv' if csv_path else 'xlsx'} {paths[0]}")


def _write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """Write beside the target and rename, so an interrupted export never leaves half a sheet."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from None


def _write_xlsx(path: Path, rows: list[dict[str, Any]]) -> None:
    """A sheet a person can read: bold frozen header, filter, columns as wide as their values,
    the column to fill in highlighted."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    sheet.title = "stock"
    sheet.append(list(COLUMNS))
    for row in rows:
        sheet.append([row[c] for c in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    fill_in = PatternFill("solid", fgColor="FFF2CC")
    for index, column in enumerate(COLUMNS, start=1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = max([len(column)] + [len(str(r[column])) for r in rows]) + 2
        if column == "sold_offline":
            for cell in sheet[letter][1:]:
                cell.fill = fill_in
    book.save(path)


# ---------------------------------------------------------------- reconcile


@cli.command("reconcile")
@settings_options
@click.option("--csv", "csv_path", type=path_type, help="The filled-in sheet as CSV.")
@click.option("--xlsx", "xlsx_path", type=path_type, help="The filled-in sheet as an Excel workbook (first sheet).")
@click.option("--dry-run", is_flag=True, help="Check the sheet and print the orders it would send; send nothing.")
@click.option("--timeout", default=str(DEFAULT_TIMEOUT_S), show_default=True,
              help="Seconds to wait for the engine's decisions, 1-3600.")
@json_option
def reconcile(settings: Settings, csv_path: Path | None, xlsx_path: Path | None, dry_run: bool, timeout: str,
              as_json: bool) -> None:
    """Bring the sales written on a sheet back in: each unit sold offline becomes a single-unit
    order (locked, then paid) whose id is fixed by the sheet, channel, SKU and unit number.

    Running the same sheet again changes nothing; after a count was raised, only the new units
    are added. Rows that cannot be applied are reported with their row number and left out; the
    exit code is non-zero if any row or unit was rejected or a decision did not arrive in time.
    """
    if (csv_path is None) == (xlsx_path is None):
        raise click.ClickException("give the filled-in sheet: --csv FILE or --xlsx FILE")
    wait_s = parse_int(timeout, "--timeout", minimum=1, maximum=3600)
    catalog = settings.catalog()
    if not dry_run:
        require_cluster(settings, "reconcile manual sales")
    rows, errors = _read_sheet(csv_path, xlsx_path, catalog)
    sheet_id = rows[0].sheet_id if rows else ""
    units = plan_reconcile(rows, sheet_id)
    if dry_run:
        _report_plan(sheet_id, rows, units, errors, as_json)
        ok = not errors
    else:
        outcomes: list[RowOutcome] = []
        if rows:  # nothing valid: nothing to ask the cluster
            with kafka_for(settings) as kafka:
                outcomes = _apply(kafka, rows, units, sheet_id, wait_s)
        ok = _report_outcomes(sheet_id, outcomes, errors, as_json)
    if not ok:
        click.get_current_context().exit(1)


def _read_sheet(csv_path: Path | None, xlsx_path: Path | None, catalog: Catalog) -> tuple[list[SheetRow], list[RowError]]:
    if csv_path is not None:
        try:
            text = csv_path.read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise click.ClickException(f"cannot read {csv_path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise click.ClickException(f"{csv_path} is not UTF-8 text; save the sheet as 'CSV UTF-8'") from None
        return parse_sheet(text, catalog)
    assert xlsx_path is not None
    return parse_records(_xlsx_records(xlsx_path), catalog)


def _xlsx_records(path: Path) -> list[tuple[int, list[Any]]]:
    """(row number, cell values) of the workbook's first sheet."""
    from zipfile import BadZipFile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror or exc}") from None
    except (BadZipFile, InvalidFileException, KeyError, ValueError):
        raise click.ClickException(f"{path} is not an Excel workbook (.xlsx)") from None
    try:
        return [(n, list(values)) for n, values in enumerate(book.worksheets[0].iter_rows(min_row=1, values_only=True), 1)]
    finally:
        book.close()


def _apply(kafka: Kafka, rows: list[SheetRow], units: list[ManualUnit], sheet_id: str, wait_s: int) -> list[RowOutcome]:
    # What the engine holds before anything is sent: a unit it already held paid was applied by
    # an earlier run. Its own state says so, so no clock (decided_at vs. now) is involved.
    states = stock_states(kafka, progress=progress_line("reading the engine's state (changelog records)"))
    done = applied_before(states, units)
    beyond = units_beyond_count(rows, sheet_id, states)
    decisions = _send_and_decide(kafka, units, wait_s)
    return reconcile_outcomes(rows, units, decisions, done, beyond)


def _send_and_decide(kafka: Kafka, units: list[ManualUnit], wait_s: int) -> dict[str, dict[str, Any]]:
    """Send the orders, wait for a decision on each, then pay the locked ones (before the
    channel's unpaid-lock timer could release them). Order id -> latest decision."""
    # From the decisions topic's end as of now: every decision for these orders comes after
    # this point (a duplicate's is repeated), and the topic's history is never re-read.
    with kafka.reader(end=[kafka.topics.orders_decisions]) as reader:
        client = LockstockClient(kafka)
        for unit in units:
            client.place_order(unit.order_id, [(unit.sku, 1)], channel=unit.channel, buyer=unit.buyer_id,
                               region=unit.region)
        _deliver(client, f"{len(units)} orders")
        decisions = _wait_for_decisions(reader, {u.order_id for u in units}, wait_s)
        locked = [u for u in units if (decisions.get(u.order_id) or {}).get("status") == "LOCKED"]
        for unit in locked:
            client.order_event(unit.order_id, "PAID", channel=unit.channel, event_id=unit.order_id + PAID_SUFFIX)
        _deliver(client, f"{len(locked)} PAID events")
        if locked:
            click.echo(f"sent PAID for {len(locked)} locked orders", err=True)
        return decisions


def _deliver(client: LockstockClient, what: str) -> None:
    left = client.producer.flush(DELIVERY_TIMEOUT_S)
    if left:
        raise click.ClickException(f"{left} of {what} not acknowledged by the broker within {DELIVERY_TIMEOUT_S:.0f}s; "
                                   "run reconcile again (it is idempotent)")


def _wait_for_decisions(reader: Reader, order_ids: set[str], wait_s: int) -> dict[str, dict[str, Any]]:
    """Order id -> its latest decision, for those decided within ``wait_s``. A record that is not
    a decision is the reader's to count and log; the engine's own decision follows it."""
    decisions: dict[str, dict[str, Any]] = {}
    progress = progress_line("waiting for the engine's decisions")
    deadline = time.monotonic() + wait_s
    while len(decisions) < len(order_ids) and time.monotonic() < deadline:
        for record in reader.poll(0.2, 1000):
            order_id = (record.key or b"").decode("utf-8", "replace")
            if order_id in order_ids:  # else someone else's order
                decisions[order_id] = record.value
        if order_ids:
            progress(len(decisions), len(order_ids))
    return decisions


# ---------------------------------------------------------------- reports


def _errors_json(errors: list[RowError]) -> list[dict[str, Any]]:
    return [{"row": e.line, "reason": e.reason} for e in errors]


def _echo_errors(errors: list[RowError]) -> None:
    if errors:
        click.echo(f"{len({e.line for e in errors})} row(s) cannot be applied and were left out:")
        for error in errors:
            click.echo(f"  {error}")


def _report_plan(sheet_id: str, rows: list[SheetRow], units: list[ManualUnit], errors: list[RowError],
                 as_json: bool) -> None:
    planned = [{"row": r.line, "sku": r.sku, "channel": r.channel, "region": r.region, "units": r.sold_offline,
                "order_ids": _id_range([u.order_id for u in units if u.line == r.line])} for r in rows]
    if as_json:
        click.echo(json.dumps({"sheet_id": sheet_id or None, "dry_run": True, "rows": planned, "units": len(units),
                               "errors": _errors_json(errors)}, indent=2))
        return
    selling = [p for p in planned if p["units"]]
    if selling:
        echo_table(selling, ["row", "sku", "channel", "region", "units", "order_ids"])
    if len(selling) < len(planned):
        click.echo(f"({len(planned) - len(selling)} rows without offline sales not shown)")
    _echo_errors(errors)
    click.echo(f"dry run: sheet {sheet_id or '?'} would send {len(units)} single-unit orders "
               f"from {len(rows)} rows; nothing was sent")


def _id_range(order_ids: list[str]) -> str:
    if not order_ids:
        return ""
    return order_ids[0] if len(order_ids) == 1 else f"{order_ids[0]} .. :{order_ids[-1].rsplit(':', 1)[1]}"


def _report_outcomes(sheet_id: str, outcomes: list[RowOutcome], errors: list[RowError], as_json: bool) -> bool:
    """Print the outcome per row; True when every row and unit was applied."""
    totals = {key: sum(getattr(o, attr) for o in outcomes) for key, attr in
              (("applied", "applied"), ("already_applied", "already"), ("undecided", "undecided"),
               ("beyond_count", "beyond_count"))}
    totals["rejected"] = sum(sum(o.rejected.values()) for o in outcomes)
    reasons = sorted({reason for o in outcomes for reason in o.rejected})
    hints = {reason: REASON_HINTS.get(reason, "the engine refused these units") for reason in reasons}
    ok = not errors and all(o.ok for o in outcomes)
    if as_json:
        click.echo(json.dumps({"sheet_id": sheet_id or None, "ok": ok, "totals": totals,
                               "rows": [o.to_dict() for o in outcomes], "errors": _errors_json(errors),
                               "hints": hints}, indent=2))
        return ok
    shown = [o for o in outcomes if o.sold_offline or o.note()]
    if shown:
        echo_table([{**o.to_dict(), "rejected": sum(o.rejected.values()), "note": o.note()} for o in shown],
                   ["row", "sku", "channel", "sold_offline", "applied", "already_applied", "rejected", "undecided",
                    "note"])
    if len(shown) < len(outcomes):
        click.echo(f"({len(outcomes) - len(shown)} rows without offline sales not shown)")
    _echo_errors(errors)
    for reason, hint in hints.items():
        click.echo(f"{reason}: {hint}")
    if reasons:
        click.echo(f"({RETRY_HINT})")
    if totals["undecided"]:
        click.echo(f"{totals['undecided']} unit(s) got no decision in time: is a worker running? Run reconcile again "
                   "soon (it is idempotent): a unit locked late is released unpaid after the channel's reservation time")
    click.echo(f"sheet {sheet_id or '?'}: {totals['applied']} units applied now (locked and paid), "
               f"{totals['already_applied']} applied by an earlier run, {totals['rejected']} rejected, "
               f"{totals['undecided']} undecided"
               + (f"; {totals['beyond_count']} applied above lowered counts stay applied" if totals["beyond_count"] else ""))
    return ok
