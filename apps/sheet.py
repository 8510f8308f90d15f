"""The manual stock sheet for an outage, and reconciling the sales written on it: pure functions.

`lockstock export` turns the engine's state into one row per SKU x channel (``sheet_rows``); a
person sells from it while lockstock is down and writes each row's sales in ``sold_offline``;
`lockstock reconcile` reads it back (``parse_sheet``), turns every unit into a single-unit order
(``plan_reconcile``) and reports what the engine did with each (``reconcile_outcomes``). No Kafka
here: the CLI (apps/cli/sheet.py) moves data between Kafka, files and these functions.

Idempotency comes from the order ids alone: unit n of a row is always the order
``manual:<sheet_id>:<channel>:<sku>:<n>``, so running a sheet again re-sends orders the engine has
already decided (it repeats its decisions and changes nothing), and a raised count adds only the
new units. A lowered count cannot give units back: those orders stay (``units_beyond_count``).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

from lockstock.catalog import Catalog
from streams.engine.channels import sellable_by_channel
from streams.engine.state import SkuState

# The sheet's columns, in this order (documented in the README; reconcile reads them by name).
COLUMNS = (
    "sheet_id", "exported_at", "sku", "region", "channel", "platform", "may_sell", "region_free", "flex",
    "reserved", "paid", "shipped", "in_transit", "transit_eta", "low_stock", "paused", "sold_offline",
)
# What reconcile needs; the other columns are for the person reading the sheet and are ignored.
REQUIRED = ("sheet_id", "sku", "region", "channel", "sold_offline")
NUMBER_COLUMNS = ("may_sell", "region_free", "flex", "reserved", "paid", "shipped", "in_transit")
MAX_SOLD_OFFLINE = 1_000_000
MANUAL_PREFIX = "manual"
FLEX_REGION = "flex"  # in_transit entries bound for the flex pool (streams.engine.automation.FLEX)

_SHEET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # it becomes part of every order id
_WHOLE = re.compile(r"^[0-9]+$")  # ASCII digits only (\d also takes other scripts)


def iso_utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_sheet_id(exported_at_ms: int, suffix: str) -> str:
    """``20261124T201500Z-3fa9``: when it was taken, plus a suffix so two exports in the same
    second never share order ids."""
    return datetime.fromtimestamp(exported_at_ms / 1000, timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"-{suffix}"


def manual_order_id(sheet_id: str, channel: str, sku: str, n: int) -> str:
    return f"{MANUAL_PREFIX}:{sheet_id}:{channel}:{sku}:{n}"


# ---------------------------------------------------------------- export


def sheet_rows(states: dict[str, SkuState], catalog: Catalog, sheet_id: str, exported_at: int) -> list[dict[str, Any]]:
    """One row per SKU x channel, sorted by SKU, region, channel; values as in ``COLUMNS``.

    ``may_sell`` is what the engine would let the channel lock now (streams.engine.channels):
    its region's free units plus the flex pool, 0 while paused. Every channel of a region (and
    every region, for flex) draws on the same units, so the rows of one SKU must not be added up.
    """
    rows = []
    channels = sorted(catalog.channels.values(), key=lambda c: (c.region, c.id))
    for sku, state in sorted(states.items()):
        sellable = sellable_by_channel(state, catalog)
        for channel in channels:
            region = state.regions.get(channel.region)
            transits = [t for t in state.in_transit.values() if t["region"] in (channel.region, FLEX_REGION)]
            etas = [t["eta"] for t in transits if t.get("eta")]
            rows.append({
                "sheet_id": sheet_id, "exported_at": iso_utc(exported_at), "sku": sku, "region": channel.region,
                "channel": channel.id, "platform": channel.platform, "may_sell": sellable[channel.id][0],
                "region_free": max(0, region.free) if region else 0, "flex": state.flex,
                "reserved": region.locked if region else 0, "paid": region.paid if region else 0,
                "shipped": region.shipped if region else 0, "in_transit": sum(t["qty"] for t in transits),
                "transit_eta": iso_utc(min(etas)) if etas else "", "low_stock": _yes_no(state.low_stock),
                "paused": _yes_no(channel.id in state.paused), "sold_offline": "",
            })
    return rows


def sku_summary(states: dict[str, SkuState]) -> list[dict[str, Any]]:
    """Per SKU, the totals a person checks first (the sheet's rows share units; these do not)."""
    return [{"sku": sku, "total": s.total, "available": s.available,
             "reserved": sum(r.locked for r in s.regions.values()), "paid": sum(r.paid for r in s.regions.values()),
             "in_transit": sum(t["qty"] for t in s.in_transit.values()), "low_stock": _yes_no(s.low_stock),
             "paused": ",".join(sorted(s.paused))}
            for sku, s in sorted(states.items())]


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


# ---------------------------------------------------------------- reading it back


@dataclass(frozen=True)
class SheetRow:
    """A row reconcile can apply. ``line`` is its row number in the file (the header is 1)."""

    line: int
    sheet_id: str
    sku: str
    region: str
    channel: str
    sold_offline: int  # 0 when left blank


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.line}: {self.reason}"


def parse_sheet(text: str, catalog: Catalog) -> tuple[list[SheetRow], list[RowError]]:
    """The rows of a filled-in CSV sheet that can be applied, and an error for every row that
    cannot (rows with errors are left out; the others are still good). Accepts what spreadsheet
    programs write: a UTF-8 byte order mark, ``;`` or tab as the separator, blank lines."""
    text = text.lstrip("\ufeff")
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    records: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    start = 1  # a quoted cell may span lines: a row is named by the line it starts on
    try:
        for record in reader:
            records.append((start, record))
            start = reader.line_num + 1
    except csv.Error as exc:
        return [], [RowError(start, f"not readable as CSV ({exc}); nothing was applied")]
    return parse_records(records, catalog)


def parse_records(records: Iterable[tuple[int, list[Any]]], catalog: Catalog) -> tuple[list[SheetRow], list[RowError]]:
    """``parse_sheet`` over (row number, cells) pairs, whatever file they came from (CSV, xlsx)."""
    records = iter(records)
    header_line, header = next(((n, cells) for n, cells in records if any(_cell(c) for c in cells)), (1, []))
    names = [_cell(c) for c in header]
    problem = _header_problem(names)
    if problem:
        return [], [RowError(header_line, f"{problem}; nothing was applied")]
    rows: list[SheetRow] = []
    errors: list[RowError] = []
    sheet_id: tuple[str, int] | None = None  # (the sheet's id, the row that set it)
    seen: dict[tuple[str, str], int] = {}
    for line, cells in records:
        values = [_cell(c) for c in cells]
        if not any(values):
            continue
        row = {name: (values[i] if i < len(values) else "") for i, name in enumerate(names) if name}
        reasons = []
        if any(values[len(names):]) or any(v for n, v in zip(names, values) if not n):
            reasons.append("has a value in a column without a header")
        sold, sold_problem = _sold_offline(row["sold_offline"])
        if sold_problem:
            reasons.append(sold_problem)
        if not _SHEET_ID.match(row["sheet_id"]):
            reasons.append("sheet_id is missing" if not row["sheet_id"] else
                           f"sheet_id {row['sheet_id']!r} is not one lockstock export writes")
        elif sheet_id is None:
            sheet_id = (row["sheet_id"], line)
        elif row["sheet_id"] != sheet_id[0]:
            reasons.append(f"sheet_id {row['sheet_id']!r} differs from {sheet_id[0]!r} (row {sheet_id[1]}); "
                           "one file is one exported sheet")
        if not row["sku"]:
            reasons.append("sku is missing")
        elif not row["sku"].isprintable():
            reasons.append(f"sku {row['sku']!r} holds control characters")
        channel = catalog.channels.get(row["channel"])
        if channel is None:
            reasons.append(f"unknown channel {row['channel']!r}; configured: {', '.join(catalog.channels)}"
                           if row["channel"] else "channel is missing")
        elif row["region"] != channel.region:
            reasons.append(f"region {row['region']!r} is not channel {channel.id}'s region ({channel.region})")
        key = (row["sku"], row["channel"])
        if not reasons and key in seen:
            reasons.append(f"duplicate of row {seen[key]} ({row['sku']} on {row['channel']}); "
                           "put all of a channel's sales of a SKU in one row")
        if reasons:
            errors += [RowError(line, reason) for reason in reasons]
            continue
        seen[key] = line
        rows.append(SheetRow(line, row["sheet_id"], row["sku"], row["region"], row["channel"], sold))
    return rows, errors


def _cell(value: Any) -> str:
    """A cell as text; a spreadsheet's whole-valued float (3.0) is the whole number it shows."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _header_problem(names: list[str]) -> str | None:
    given = [n for n in names if n]
    if not given:
        return "the file is empty; expected the header row of a `lockstock export` sheet"
    if not set(given) & set(REQUIRED):
        return f"this is not the header row of a `lockstock export` sheet (expected {', '.join(COLUMNS)})"
    unknown = [n for n in given if n not in COLUMNS]
    doubled = sorted({n for n in given if given.count(n) > 1})
    missing = [n for n in REQUIRED if n not in given]
    if unknown or doubled or missing:
        parts = ([f"unknown column(s) {', '.join(unknown)}"] if unknown else []) + \
                ([f"column(s) {', '.join(doubled)} given twice"] if doubled else []) + \
                ([f"missing column(s) {', '.join(missing)}"] if missing else [])
        return "header: " + "; ".join(parts) + f" (a sheet has {', '.join(COLUMNS)})"
    return None


def _sold_offline(text: str) -> tuple[int, str | None]:
    if text == "":
        return 0, None
    if not _WHOLE.match(text):
        return 0, f"sold_offline must be a whole number >= 0, got {text!r}"
    if int(text) > MAX_SOLD_OFFLINE:
        return 0, f"sold_offline must be <= {MAX_SOLD_OFFLINE}, got {text}"
    return int(text), None


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class ManualUnit:
    """One unit sold offline, sent as a single-unit order. Its buyer is the order itself:
    offline sales already happened, so a per-buyer purchase limit must not refuse them."""

    line: int
    sku: str
    channel: str
    region: str
    n: int
    order_id: str

    @property
    def buyer_id(self) -> str:
        return self.order_id


def plan_reconcile(rows: Iterable[SheetRow], sheet_id: str) -> list[ManualUnit]:
    """Every unit sold offline as one order with a deterministic id, rows in file order."""
    return [ManualUnit(row.line, row.sku, row.channel, row.region, n, manual_order_id(sheet_id, row.channel, row.sku, n))
            for row in rows for n in range(1, row.sold_offline + 1)]


def applied_before(states: dict[str, SkuState], units: Iterable[ManualUnit]) -> set[str]:
    """The units an earlier run already applied, per the engine's state before this run: it holds
    them paid, or remembers them as finished. A unit held but not yet paid (an earlier run timed
    out before paying) counts as applied by the run that pays it."""
    done = set()
    for unit in units:
        state = states.get(unit.sku)
        if state is None:
            continue
        held = state.held(unit.order_id)
        if (held is not None and held.paid) or state.outcome(unit.order_id) is not None:
            done.add(unit.order_id)
    return done


def units_beyond_count(rows: Iterable[SheetRow], sheet_id: str, states: dict[str, SkuState]) -> dict[int, int]:
    """Row number -> units an earlier run applied above the row's current (lowered) count. The
    engine still holds them: reconcile never gives units back."""
    beyond = {}
    for row in rows:
        state = states.get(row.sku)
        prefix = manual_order_id(sheet_id, row.channel, row.sku, 0)[:-1]
        held = [order_id for order_id in (state.reservations if state else {}) if order_id.startswith(prefix)]
        extra = sum(1 for order_id in held if _WHOLE.match(order_id[len(prefix):])
                    and int(order_id[len(prefix):]) > row.sold_offline)
        if extra:
            beyond[row.line] = extra
    return beyond


# ---------------------------------------------------------------- the outcome

# What a rejection means for the operator, by the engine's reason.
REASON_HINTS = {
    "OUT_OF_STOCK": "sold twice during the outage: the engine had no free units left in the region or the flex "
                    "pool (other channels or online sales took them). Cancel and refund these sales, or if the goods "
                    "really were handed over, the count is off: correct it with `lockstock stock adjust`",
    "CHANNEL_PAUSED": "the channel is paused for this SKU; these sales should not have been taken",
    "UNKNOWN_SKU": "the engine has no stock for this SKU (was it renamed, or never set?)",
    "UNKNOWN_REGION": "the row's region is not configured in the engine's catalog",
    "RELEASED:PAYMENT_TIMEOUT": "locked, but no payment reached the engine within the channel's reservation time "
                                "(an earlier run timed out?): the lock was released",
}
RETRY_HINT = ("a rejected unit stays rejected for this sheet: after fixing the cause, enter those sales "
              "in a freshly exported sheet")


@dataclass
class RowOutcome:
    line: int
    sku: str
    channel: str
    region: str
    sold_offline: int
    applied: int = 0  # locked (and paid) by this run
    already: int = 0  # locked and paid by an earlier run of this sheet
    rejected: dict[str, int] = field(default_factory=dict)  # engine reason -> units
    undecided: int = 0  # no decision within the timeout
    beyond_count: int = 0  # applied earlier above a lowered count; still held

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.undecided

    def note(self) -> str:
        notes = [f"{n} rejected {reason}" for reason, n in sorted(self.rejected.items())]
        if self.undecided:
            notes.append(f"{self.undecided} undecided")
        if self.beyond_count:
            notes.append(f"count lowered: {self.beyond_count} unit(s) applied earlier stay applied "
                         "(use `lockstock stock adjust` to give them back)")
        return "; ".join(notes)

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.line, "sku": self.sku, "channel": self.channel, "region": self.region,
                "sold_offline": self.sold_offline, "applied": self.applied, "already_applied": self.already,
                "rejected": dict(sorted(self.rejected.items())), "undecided": self.undecided,
                "beyond_count": self.beyond_count}


def reconcile_outcomes(rows: Iterable[SheetRow], units: Iterable[ManualUnit], decisions: dict[str, dict[str, Any]],
                       done_before: set[str], beyond: dict[int, int]) -> list[RowOutcome]:
    """Per row, what became of its units, from the latest decision per order id."""
    outcomes = {row.line: RowOutcome(row.line, row.sku, row.channel, row.region, row.sold_offline,
                                     beyond_count=beyond.get(row.line, 0)) for row in rows}
    for unit in units:
        outcome, decision = outcomes[unit.line], decisions.get(unit.order_id)
        if decision is None:
            outcome.undecided += 1
        elif decision["status"] == "LOCKED":
            if unit.order_id in done_before:
                outcome.already += 1
            else:
                outcome.applied += 1
        else:
            reason = decision.get("reason") or decision["status"]
            key = reason if decision["status"] == "REJECTED" else f"{decision['status']}:{reason}"
            outcome.rejected[key] = outcome.rejected.get(key, 0) + 1
    return sorted(outcomes.values(), key=lambda o: o.line)
