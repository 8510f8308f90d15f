"""The manual stock sheet (apps/sheet.py): export rows, reading a filled-in sheet back,
the reconcile plan and its outcome. Plain functions over engine states built with the engine's
own pure functions; no Kafka."""

from __future__ import annotations

import dataclasses
from functools import partial

import pytest

from apps.sheet import (
    COLUMNS, ManualUnit, SheetRow, applied_before, iso_utc, manual_order_id, new_sheet_id, parse_records,
    parse_sheet, plan_reconcile, reconcile_outcomes, sheet_rows, sku_summary, to_csv, units_beyond_count,
)
from streams.engine.stock import commit_order_line
from tests.builders import CATALOG, commanded, lock_line, order_decision, quiet

QUIET = quiet(flex_threshold_pct=100)
NOW = 1_795_000_000_000  # 2026-11-18T11:06:40Z
SHEET = "20261124T201500Z-3fa9"
HEADER = ",".join(COLUMNS)

command = partial(commanded, catalog=QUIET, now=NOW)  # this module's commands: QUIET rules, at NOW


def lock(state, order_id, qty, region, channel, buyer=None):
    """(state, outcome) of a LOCK at NOW under QUIET rules; the buyer is the order itself unless named."""
    state, outcome, _ = lock_line(state, order_id, qty, region=region, channel=channel, buyer_id=buyer or order_id,
                                  catalog=QUIET, now=NOW)
    return state, outcome


def states():
    """RING: US 40 / EU 30 / SEA 10 + flex 20; 7 locked in US (3 of them paid), 2 in EU; amazon-eu
    paused; 50 units on the way to EU and 5 to the flex pool. BAND: 10 units, all in SEA."""
    ring = command(None, "SET_STOCK", "s1", sku="RING", total=100, regions={"US": 40, "EU": 30, "SEA": 10}, flex_pct=20)
    ring, _ = lock(ring, "o-1", 4, "US", "tiktok-us")
    ring, _ = lock(ring, "o-2", 3, "US", "shopify")
    ring, _ = commit_order_line(ring, "o-2")
    ring, _ = lock(ring, "o-3", 2, "EU", "tiktok-eu")
    ring = command(ring, "PAUSE_CHANNEL", "p1", channel="amazon-eu")
    ring = command(ring, "RESTOCK", "t-eu", quantity=50, region="EU", eta=NOW + 36 * 3600_000)
    ring = command(ring, "RESTOCK", "t-flex", quantity=5, region="flex", eta=NOW + 2 * 3600_000)
    band = command(None, "SET_STOCK", "s2", sku="BAND", total=10, regions={"SEA": 10}, flex_pct=0)
    return {"RING": ring, "BAND": band}


def rows_by(rows):
    return {(r["sku"], r["channel"]): r for r in rows}


# ---------------------------------------------------------------- export


def test_one_row_per_sku_and_channel_sorted_by_sku_region_channel():
    rows = sheet_rows(states(), CATALOG, SHEET, NOW)
    assert len(rows) == 2 * len(CATALOG.channels)
    assert all(list(r) == list(COLUMNS) for r in rows)
    keys = [(r["sku"], r["region"], r["channel"]) for r in rows]
    assert keys == sorted(keys)
    assert keys[:3] == [("BAND", "EU", "amazon-eu"), ("BAND", "EU", "tiktok-eu"), ("BAND", "SEA", "shopee-my")]
    assert {r["sheet_id"] for r in rows} == {SHEET}
    assert {r["exported_at"] for r in rows} == {iso_utc(NOW)}
    assert {r["sold_offline"] for r in rows} == {""}


def test_rows_show_what_each_channel_may_sell_and_why():
    rows = rows_by(sheet_rows(states(), CATALOG, SHEET, NOW))
    us = rows[("RING", "tiktok-us")]
    assert (us["region"], us["platform"]) == ("US", "tiktok")
    # US: 40 allocated, 4 reserved + 3 paid -> 33 free, plus the 20 flex units any region may draw
    assert (us["may_sell"], us["region_free"], us["flex"], us["reserved"], us["paid"], us["shipped"]) == (53, 33, 20, 4, 3, 0)
    assert rows[("RING", "shopify")]["may_sell"] == 53  # channels of one region share the same units
    eu = rows[("RING", "tiktok-eu")]
    assert (eu["may_sell"], eu["region_free"], eu["reserved"]) == (48, 28, 2)
    assert (eu["in_transit"], eu["transit_eta"]) == (55, iso_utc(NOW + 2 * 3600_000))  # EU's own + flex-bound
    assert (rows[("RING", "shopee-my")]["in_transit"], rows[("RING", "tiktok-us")]["in_transit"]) == (5, 5)
    paused = rows[("RING", "amazon-eu")]
    assert (paused["paused"], paused["may_sell"], paused["region_free"]) == ("yes", 0, 28)
    assert eu["paused"] == "no" and eu["low_stock"] == "no"
    band_us = rows[("BAND", "tiktok-us")]
    assert (band_us["may_sell"], band_us["region_free"], band_us["transit_eta"]) == (0, 0, "")
    assert rows[("BAND", "shopee-th")]["may_sell"] == 10


def test_summary_totals_per_sku():
    summary = {s["sku"]: s for s in sku_summary(states())}
    assert summary["RING"] == {"sku": "RING", "total": 100, "available": 33 + 28 + 10 + 20, "reserved": 6, "paid": 3,
                               "in_transit": 55, "low_stock": "no", "paused": "amazon-eu"}
    assert summary["BAND"]["available"] == 10


def test_sheet_id_and_times_are_readable():
    assert new_sheet_id(NOW, "3fa9") == "20261118T110640Z-3fa9"
    assert iso_utc(NOW) == "2026-11-18T11:06:40Z"
    assert manual_order_id(SHEET, "tiktok-us", "RING", 3) == f"manual:{SHEET}:tiktok-us:RING:3"


# ---------------------------------------------------------------- reading it back


def exported_csv() -> str:
    return to_csv(sheet_rows(states(), CATALOG, SHEET, NOW))


def filled(sales: dict[tuple[str, str], str]) -> str:
    """The exported CSV with sold_offline filled in for some (sku, channel)."""
    lines = exported_csv().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        key = (cells[COLUMNS.index("sku")], cells[COLUMNS.index("channel")])
        cells[-1] = sales.get(key, "")
        out.append(",".join(cells))
    return "\n".join(out) + "\n"


def line_of(text: str, sku: str, channel: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if f",{sku}," in line and f",{channel}," in line)


def test_an_untouched_export_reads_back_whole():
    rows, errors = parse_sheet(exported_csv(), CATALOG)
    assert errors == []
    assert len(rows) == 2 * len(CATALOG.channels)
    assert rows[0] == SheetRow(2, SHEET, "BAND", "EU", "amazon-eu", 0)
    assert all(r.sold_offline == 0 for r in rows)


def test_filled_rows_carry_their_counts_and_row_numbers():
    text = filled({("RING", "tiktok-us"): "3", ("BAND", "shopee-my"): " 12 "})
    rows, errors = parse_sheet(text, CATALOG)
    assert errors == []
    sold = {(r.sku, r.channel): (r.sold_offline, r.line) for r in rows if r.sold_offline}
    assert sold == {("RING", "tiktok-us"): (3, line_of(text, "RING", "tiktok-us")),
                    ("BAND", "shopee-my"): (12, line_of(text, "BAND", "shopee-my"))}


@pytest.mark.parametrize("value, reason", [
    ("-2", "sold_offline must be a whole number >= 0, got '-2'"),
    ("1.5", "sold_offline must be a whole number >= 0, got '1.5'"),
    ("three", "sold_offline must be a whole number >= 0, got 'three'"),
    ("+3", "sold_offline must be a whole number >= 0, got '+3'"),
    ('"1,000"', "sold_offline must be a whole number >= 0, got '1,000'"),  # a quoted thousands separator
    ("1000001", "sold_offline must be <= 1000000, got 1000001"),
])
def test_bad_counts_are_rejected_with_the_row_number(value, reason):
    text = filled({("RING", "tiktok-us"): value, ("RING", "shopify"): "2"})
    rows, errors = parse_sheet(text, CATALOG)
    assert [str(e) for e in errors] == [f"row {line_of(text, 'RING', 'tiktok-us')}: {reason}"]
    assert ("RING", "tiktok-us") not in {(r.sku, r.channel) for r in rows}  # left out ...
    assert {(r.sku, r.channel): r.sold_offline for r in rows}[("RING", "shopify")] == 2  # ... the rest still good


def test_identity_columns_are_checked_row_by_row():
    lines = exported_csv().splitlines()
    column = {name: i for i, name in enumerate(COLUMNS)}

    def edit(n, **changes):
        cells = lines[n - 1].split(",")
        for name, value in changes.items():
            cells[column[name]] = value
        lines[n - 1] = ",".join(cells)

    edit(3, channel="tiktok-xx")
    edit(4, region="US")  # BAND shopee-my is a SEA channel
    edit(5, sku="")
    edit(6, sheet_id="")
    edit(7, sheet_id="20261124T201500Z-ffff")
    edit(8, sheet_id="bad id")
    lines.append(lines[9])  # row 10 again, at the end
    rows, errors = parse_sheet("\n".join(lines) + "\n", CATALOG)
    last = len(lines)
    doubled = next(r for r in rows if r.line == 10)
    assert [str(e) for e in errors] == [
        "row 3: unknown channel 'tiktok-xx'; configured: " + ", ".join(CATALOG.channels),
        "row 4: region 'US' is not channel shopee-my's region (SEA)",
        "row 5: sku is missing",
        "row 6: sheet_id is missing",
        f"row 7: sheet_id '20261124T201500Z-ffff' differs from '{SHEET}' (row 2); one file is one exported sheet",
        "row 8: sheet_id 'bad id' is not one lockstock export writes",
        f"row {last}: duplicate of row 10 ({doubled.sku} on {doubled.channel}); put all of a channel's sales of a "
        "SKU in one row",
    ]
    assert [r.line for r in rows] == [2, 9, *range(10, last)]


def test_a_row_with_several_problems_reports_each():
    text = filled({("RING", "tiktok-us"): "-1"}).replace(f"{SHEET},", ",", 1)  # first data row loses its id
    text = text.replace(",RING,US,tiktok-us,", ",RING,EU,tiktok-us,")
    _, errors = parse_sheet(text, CATALOG)
    line = line_of(text, "RING", "tiktok-us")
    assert [str(e) for e in errors if e.line == line] == [
        f"row {line}: sold_offline must be a whole number >= 0, got '-1'",
        f"row {line}: region 'EU' is not channel tiktok-us's region (US)",
    ]


@pytest.mark.parametrize("text", ["", "\n\n", " , ,\n"])
def test_an_empty_file_applies_nothing(text):
    assert [str(e) for e in parse_sheet(text, CATALOG)[1]] == [
        "row 1: the file is empty; expected the header row of a `lockstock export` sheet; nothing was applied"]


@pytest.mark.parametrize("text, reason", [
    ("", "this is not the header row of a `lockstock export` sheet"),  # the data row comes first
    (HEADER.replace(",sold_offline", "") + "\n", "missing column(s) sold_offline"),
    (HEADER.replace("sold_offline", "sold offline") + "\n", "unknown column(s) sold offline; missing column(s) sold_offline"),
    (HEADER + ",sku\n", "column(s) sku given twice"),
])
def test_a_bad_header_applies_nothing(text, reason):
    rows, errors = parse_sheet(text + f"{SHEET},,RING,US,tiktok-us" + "," * 11 + "3\n", CATALOG)
    assert rows == [] and len(errors) == 1
    assert errors[0].line == 1 and reason in errors[0].reason and errors[0].reason.endswith("nothing was applied")


def test_spreadsheet_quirks_are_accepted():
    # Excel: a byte order mark, ';' as separator in many locales, blank lines, dropped info columns.
    text = "\ufeffsheet_id;sku;region;channel;sold_offline;\n\n" \
           f"{SHEET};RING;US;tiktok-us;4;\n;;;;;\n{SHEET};RING;SEA;shopee-th;;\n"
    rows, errors = parse_sheet(text, CATALOG)
    assert errors == []
    assert rows == [SheetRow(3, SHEET, "RING", "US", "tiktok-us", 4), SheetRow(5, SHEET, "RING", "SEA", "shopee-th", 0)]


def test_a_row_is_named_by_the_line_it_starts_on():
    text = f"sheet_id,sku,region,channel,sold_offline\n\n{SHEET},RING,US,tiktok-us,1\n" \
           f'{SHEET},RING,US,shopify,"2\n3"\n{SHEET},RING\x07,US,amazon-us,4\n'
    rows, errors = parse_sheet(text, CATALOG)
    assert [r.line for r in rows] == [3]
    assert [str(e) for e in errors] == ["row 4: sold_offline must be a whole number >= 0, got '2\\n3'",
                                        "row 6: sku 'RING\\x07' holds control characters"]


def test_values_outside_the_header_are_refused():
    text = f"sheet_id,sku,region,channel,sold_offline\n{SHEET},RING,US,tiktok-us,4,oops\n"
    assert [str(e) for e in parse_sheet(text, CATALOG)[1]] == ["row 2: has a value in a column without a header"]


def test_workbook_cells_read_like_csv_cells():
    records = [(1, ["sheet_id", "sku", "region", "channel", "sold_offline", None]),
               (2, [SHEET, "RING", "US", "tiktok-us", 3, None]),
               (3, [SHEET, "RING", "EU", "tiktok-eu", 2.0, None]),
               (4, [None] * 6),
               (5, [SHEET, "RING", "SEA", "shopee-my", 2.5, None]),
               (6, [SHEET, "RING", "SEA", "shopee-th", None, None])]
    rows, errors = parse_records(records, CATALOG)
    assert [(r.line, r.sold_offline) for r in rows] == [(2, 3), (3, 2), (6, 0)]
    assert [str(e) for e in errors] == ["row 5: sold_offline must be a whole number >= 0, got '2.5'"]


# ---------------------------------------------------------------- the plan


def test_every_unit_is_one_order_with_a_fixed_id():
    rows = [SheetRow(4, SHEET, "RING", "US", "tiktok-us", 3), SheetRow(7, SHEET, "RING", "SEA", "shopee-my", 0),
            SheetRow(9, SHEET, "BAND", "EU", "tiktok-eu", 1)]
    units = plan_reconcile(rows, SHEET)
    assert [(u.line, u.sku, u.channel, u.region, u.n) for u in units] == [
        (4, "RING", "tiktok-us", "US", 1), (4, "RING", "tiktok-us", "US", 2), (4, "RING", "tiktok-us", "US", 3),
        (9, "BAND", "tiktok-eu", "EU", 1)]
    assert units[1].order_id == f"manual:{SHEET}:tiktok-us:RING:2"
    assert len({u.buyer_id for u in units}) == len(units)
    assert plan_reconcile(rows, SHEET) == units  # deterministic: the same sheet, the same orders
    raised = plan_reconcile([dataclasses.replace(rows[0], sold_offline=5)], SHEET)
    assert [u.order_id for u in raised[:3]] == [u.order_id for u in units[:3]]  # a raise only adds ids


def test_offline_units_lock_past_a_purchase_limit_and_a_rerun_changes_nothing():
    state = states()["BAND"]
    state = command(state, "SET_PURCHASE_LIMIT", "l1", buyer_limit=1)
    units = plan_reconcile([SheetRow(2, SHEET, "BAND", "SEA", "shopee-my", 4)], SHEET)
    for unit in units:
        state, outcome = lock(state, unit.order_id, 1, unit.region, unit.channel, unit.buyer_id)
        assert outcome.status == "LOCKED"
    before = state.public_view()
    for unit in units:  # the same sheet again: the engine repeats its answers
        state, outcome = lock(state, unit.order_id, 1, unit.region, unit.channel, unit.buyer_id)
        assert outcome.status == "LOCKED" and outcome.replayed
    assert state.public_view() == before and before["locked"] == 4


def test_applied_before_is_what_the_engine_holds_paid_or_remembers():
    band = states()["BAND"]
    rows = [SheetRow(2, SHEET, "BAND", "SEA", "shopee-my", 12)]
    units = plan_reconcile(rows, SHEET)
    for unit in units:
        band, _ = lock(band, unit.order_id, 1, "SEA", "shopee-my")  # 10 lock, 2 are remembered as rejected
    ids = [u.order_id for u in units]
    band, _ = commit_order_line(band, ids[0])
    # Units 2-10 are held but unpaid (an earlier run timed out before paying): the next run pays them.
    assert applied_before({"BAND": band}, units) == {ids[0], ids[10], ids[11]}
    more = plan_reconcile([dataclasses.replace(rows[0], sold_offline=14)], SHEET)
    assert applied_before({"BAND": band}, more) == {ids[0], ids[10], ids[11]}
    assert applied_before({}, units) == set()


def test_a_lowered_count_is_found_and_never_given_back():
    band = states()["BAND"]
    for unit in plan_reconcile([SheetRow(2, SHEET, "BAND", "SEA", "shopee-my", 5)], SHEET):
        band, _ = lock(band, unit.order_id, 1, "SEA", "shopee-my")
    band, _ = lock(band, f"manual:{SHEET}:shopee-my:BAND:x9", 1, "SEA", "shopee-my")  # not a unit number
    lowered = [SheetRow(2, SHEET, "BAND", "SEA", "shopee-my", 2), SheetRow(3, SHEET, "BAND", "SEA", "shopee-th", 0)]
    assert units_beyond_count(lowered, SHEET, {"BAND": band}) == {2: 3}
    assert units_beyond_count(lowered, "20991231T000000Z-0000", {"BAND": band}) == {}
    assert units_beyond_count([dataclasses.replace(lowered[0], sold_offline=5)], SHEET, {"BAND": band}) == {}


# ---------------------------------------------------------------- the outcome


def test_outcomes_per_row():
    rows = [SheetRow(2, SHEET, "RING", "US", "tiktok-us", 4), SheetRow(5, SHEET, "BAND", "SEA", "shopee-my", 3),
            SheetRow(6, SHEET, "BAND", "SEA", "shopee-th", 0)]
    units = plan_reconcile(rows, SHEET)
    ids = [u.order_id for u in units]
    decisions = {order_id: order_decision(order_id, status, reason=reason) for order_id, status, reason in [
        (ids[0], "LOCKED", None), (ids[1], "LOCKED", None), (ids[2], "LOCKED", None), (ids[4], "LOCKED", None),
        (ids[5], "REJECTED", "OUT_OF_STOCK"), (ids[6], "RELEASED", "PAYMENT_TIMEOUT")]}
    outcomes = reconcile_outcomes(rows, units, decisions, done_before={ids[0], ids[1]}, beyond={6: 2})
    ring, band, cleared = outcomes
    assert (ring.applied, ring.already, ring.rejected, ring.undecided, ring.ok) == (1, 2, {}, 1, False)
    assert (band.applied, band.rejected, band.ok) == (1, {"OUT_OF_STOCK": 1, "RELEASED:PAYMENT_TIMEOUT": 1}, False)
    assert band.note() == "1 rejected OUT_OF_STOCK; 1 rejected RELEASED:PAYMENT_TIMEOUT"
    assert cleared.ok and cleared.beyond_count == 2 and "stay applied" in cleared.note()
    assert cleared.to_dict() == {"row": 6, "sku": "BAND", "channel": "shopee-th", "region": "SEA", "sold_offline": 0,
                                 "applied": 0, "already_applied": 0, "rejected": {}, "undecided": 0, "beyond_count": 2}


def test_a_unit_is_a_manual_unit():
    unit = plan_reconcile([SheetRow(2, SHEET, "RING", "US", "tiktok-us", 1)], SHEET)[0]
    assert unit == ManualUnit(2, "RING", "tiktok-us", "US", 1, f"manual:{SHEET}:tiktok-us:RING:1")
