"""Export -> sell on paper -> reconcile, on a real broker with a worker, through the CLI:
the sheet's numbers are the engine's, manual sales come back as locked and paid orders, bad rows
and oversold units are reported by row, and reconciling again changes nothing."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any, Callable

import pytest
from click.testing import CliRunner

from apps.cli import cli
from apps.cli import sheet as sheet_cli  # noqa: F401  (registers export and reconcile)
from apps.client import LockstockClient
from apps.readback import read_to_end, stock_states
from lockstock.clock import now_ms

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers]

SKUS = ("SKU-A", "SKU-B", "SKU-C")


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout:.0f}s")
        time.sleep(0.2)


def views(worker) -> dict[str, dict]:
    found = {}
    for sku in SKUS:
        status, view = worker.get_json(f"/stock/{sku}/")
        assert status == 200, (sku, view)
        found[sku] = view
    return found


def run_cli(kafka, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(cli, [*args, "--json"], env=kafka.settings.as_env())
    assert "Traceback" not in result.output, result.output
    return result.exit_code, json.loads(result.stdout)


def held(view: dict) -> int:
    return view["locked"] + view["paid"]


def caught_up(kafka, worker) -> dict[str, dict] | None:
    """The worker's views once the stock changelog (what export reads) says the same."""
    live = views(worker)
    return live if {sku: state.public_view() for sku, state in stock_states(kafka).items()} == live else None


def paid_by(worker, expected: dict[str, int]) -> dict[str, dict] | None:
    live = views(worker)
    return live if all(live[sku]["paid"] == paid for sku, paid in expected.items()) else None


def sold_rows(report: dict) -> dict[tuple[str, str], dict]:
    return {(r["sku"], r["channel"]): r for r in report["rows"] if r["sold_offline"]}


@pytest.mark.timeout(420)
def test_export_sell_offline_reconcile_and_reconcile_again(kafka, workers, tmp_path):
    worker = workers.start()
    worker.wait_ready()
    client = LockstockClient(kafka)
    client.set_stock("SKU-A", 10, {"US": 6, "EU": 4}, flex_pct=0)
    client.set_stock("SKU-B", 20, {"US": 8, "EU": 4, "SEA": 4}, flex_pct=20)  # 4 flex units
    client.set_stock("SKU-C", 5, {"SEA": 5}, flex_pct=0)
    client.command("SKU-B", "RESTOCK", quantity=30, region="EU", eta=now_ms() + 36 * 3600_000)
    client.command("SKU-B", "PAUSE_CHANNEL", channel="amazon-eu")
    client.flush()
    wait_until(lambda: all(worker.get_json(f"/stock/{s}/")[0] == 200 for s in SKUS) and
               views(worker)["SKU-B"]["paused_channels"] == ["amazon-eu"], 30, "stock set")

    # The stream before the outage: some orders locked, one paid, one rejected.
    client.place_order("o-1", [("SKU-A", 2)], channel="tiktok-us", buyer="b1")
    client.place_order("o-2", [("SKU-A", 1)], channel="tiktok-eu", buyer="b2")
    client.place_order("o-3", [("SKU-B", 3)], channel="shopee-my", buyer="b3")
    client.place_order("o-4", [("SKU-C", 9)], channel="shopee-my", buyer="b4")
    client.flush()
    first = {o: ds[-1]["status"] for o, ds in client.decisions({"o-1", "o-2", "o-3", "o-4"}).items()}
    assert first == {"o-1": "LOCKED", "o-2": "LOCKED", "o-3": "LOCKED", "o-4": "REJECTED"}
    client.order_event("o-1", "PAID", channel="tiktok-us")
    client.flush()
    wait_until(lambda: views(worker)["SKU-A"]["paid"] == 2, 30, "o-1 paid")
    before = wait_until(lambda: caught_up(kafka, worker), 30, "changelog caught up")

    # Export: one row per SKU x channel, numbers as the engine has them.
    sheet_path, book_path = tmp_path / "sheet.csv", tmp_path / "sheet.xlsx"
    code, exported = run_cli(kafka, "export", "--csv", str(sheet_path), "--xlsx", str(book_path))
    assert code == 0, exported
    text = sheet_path.read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    catalog = kafka.settings.catalog()
    assert exported["rows"] == len(rows) == len(SKUS) * len(catalog.channels)
    assert {r["sheet_id"] for r in rows} == {exported["sheet_id"]}
    for row in rows:
        view = before[row["sku"]]
        region = view["regions"][row["region"]]
        paused = row["channel"] in view["paused_channels"]
        assert row["region"] == catalog.channels[row["channel"]].region
        assert {k: int(row[k]) for k in ("may_sell", "region_free", "flex", "reserved", "paid", "shipped", "in_transit")} == {
            "may_sell": 0 if paused else region["free"] + view["flex"], "region_free": region["free"],
            "flex": view["flex"], "reserved": region["locked"], "paid": region["paid"], "shipped": region["shipped"],
            "in_transit": region["in_transit"]}, row
        assert (row["paused"], row["low_stock"], row["sold_offline"]) == (
            "yes" if paused else "no", "yes" if view["low_stock"] else "no", "")
        assert bool(row["transit_eta"]) == (row["sku"] == "SKU-B" and row["region"] == "EU")
    by_key = {(r["sku"], r["channel"]): r for r in rows}
    assert by_key[("SKU-A", "tiktok-us")]["may_sell"] == "4"  # US: 6 - 2 paid (o-2 is EU's)
    assert by_key[("SKU-A", "youtube-us")]["may_sell"] == "4"  # the same US units, again
    assert by_key[("SKU-B", "amazon-eu")]["may_sell"] == "0" and by_key[("SKU-B", "tiktok-eu")]["may_sell"] == "8"
    assert {s["sku"]: s["available"] for s in exported["skus"]} == {s: v["available"] for s, v in before.items()}
    from openpyxl import load_workbook
    assert load_workbook(book_path).active.max_row == len(rows) + 1

    # The outage: sales written on the sheet, one oversold, one on a paused channel, two bad rows.
    lines = text.splitlines()
    line_no = {(r["sku"], r["channel"]): n for n, r in enumerate(rows, start=2)}

    def write_sheet(sales: dict[tuple[str, str], str], channel_typo: tuple[str, str] | None = None) -> None:
        out = [lines[0]]
        for n, line in enumerate(lines[1:], start=2):
            cells = line.split(",")
            key = (rows[n - 2]["sku"], rows[n - 2]["channel"])
            cells[-1] = sales.get(key, "")
            if key == channel_typo:
                cells[4] = "tiktok-xx"
            out.append(",".join(cells))
        sheet_path.write_text("\n".join(out) + "\n")

    sales = {("SKU-A", "tiktok-us"): "3", ("SKU-C", "shopee-my"): "7", ("SKU-B", "tiktok-eu"): "2",
             ("SKU-B", "amazon-eu"): "1", ("SKU-A", "shopee-th"): "-2", ("SKU-C", "tiktok-us"): "1"}
    write_sheet(sales, channel_typo=("SKU-C", "tiktok-us"))

    code, report = run_cli(kafka, "reconcile", "--csv", str(sheet_path), "--timeout", "120")
    assert code == 1, report  # rows were rejected
    assert sorted((e["row"], e["reason"].split(";")[0]) for e in report["errors"]) == sorted([
        (line_no[("SKU-A", "shopee-th")], "sold_offline must be a whole number >= 0, got '-2'"),
        (line_no[("SKU-C", "tiktok-us")], "unknown channel 'tiktok-xx'"),
    ])
    outcome = {(r["sku"], r["channel"]): r for r in report["rows"]}
    assert len(outcome) == len(rows) - 2
    assert {k: (r["applied"], r["already_applied"], r["rejected"], r["undecided"]) for k, r in sold_rows(report).items()} == {
        ("SKU-A", "tiktok-us"): (3, 0, {}, 0),
        ("SKU-C", "shopee-my"): (5, 0, {"OUT_OF_STOCK": 2}, 0),
        ("SKU-B", "tiktok-eu"): (2, 0, {}, 0),
        ("SKU-B", "amazon-eu"): (0, 0, {"CHANNEL_PAUSED": 1}, 0),
    }
    assert outcome[("SKU-C", "shopee-my")]["row"] == line_no[("SKU-C", "shopee-my")]
    assert "sold twice" in report["hints"]["OUT_OF_STOCK"]
    assert report["totals"] == {"applied": 10, "already_applied": 0, "undecided": 0, "beyond_count": 0, "rejected": 3}

    # The engine: exactly the applied units more held, all of them paid (no unpaid lock can expire).
    applied = {"SKU-A": 3, "SKU-B": 2, "SKU-C": 5}
    after = wait_until(lambda: paid_by(worker, {s: before[s]["paid"] + applied[s] for s in SKUS}), 30, "manual units paid")
    for sku in SKUS:
        assert held(after[sku]) == held(before[sku]) + applied[sku]
        assert after[sku]["locked"] == before[sku]["locked"]
    assert after["SKU-C"]["available"] == 0 and after["SKU-A"]["regions"]["US"]["paid"] == 5

    # The same sheet again: every decision repeated, nothing changes.
    code, again = run_cli(kafka, "reconcile", "--csv", str(sheet_path))
    assert code == 1 and again["errors"] == report["errors"]
    assert {k: (r["applied"], r["already_applied"], r["rejected"]) for k, r in sold_rows(again).items()} == {
        ("SKU-A", "tiktok-us"): (0, 3, {}), ("SKU-C", "shopee-my"): (0, 5, {"OUT_OF_STOCK": 2}),
        ("SKU-B", "tiktok-eu"): (0, 2, {}), ("SKU-B", "amazon-eu"): (0, 0, {"CHANNEL_PAUSED": 1}),
    }
    settle_end = time.monotonic() + 3  # the re-sent PAID events are no-ops: nothing moves meanwhile
    while time.monotonic() < settle_end:
        assert views(worker) == after
        time.sleep(0.3)
    decisions: dict[str, list[tuple]] = {}
    for record in read_to_end(kafka, [kafka.topics.orders_decisions]):
        value = kafka.codec.decode(record.value, topic=record.topic).value
        if value["order_id"].startswith("manual:"):
            decisions.setdefault(value["order_id"], []).append((value["status"], value["reason"], value["decided_at"]))
    assert len(decisions) == 3 + 7 + 2 + 1
    assert all(len(ds) == 2 and ds[0] == ds[1] for ds in decisions.values()), decisions  # repeated, not re-decided

    # A count raised (2 -> 4) adds only the difference; a count lowered (3 -> 1) gives nothing back.
    write_sheet({**sales, ("SKU-B", "tiktok-eu"): "4", ("SKU-A", "tiktok-us"): "1"},
                channel_typo=("SKU-C", "tiktok-us"))
    code, third = run_cli(kafka, "reconcile", "--csv", str(sheet_path))
    assert code == 1
    rows3 = sold_rows(third)
    assert (rows3[("SKU-B", "tiktok-eu")]["applied"], rows3[("SKU-B", "tiktok-eu")]["already_applied"]) == (2, 2)
    assert (rows3[("SKU-A", "tiktok-us")]["applied"], rows3[("SKU-A", "tiktok-us")]["already_applied"],
            rows3[("SKU-A", "tiktok-us")]["beyond_count"]) == (0, 1, 2)
    assert third["totals"]["applied"] == 2
    final = wait_until(lambda: paid_by(worker, {"SKU-B": after["SKU-B"]["paid"] + 2}), 30, "raised count paid")
    assert final["SKU-A"] == after["SKU-A"] and final["SKU-C"] == after["SKU-C"]
    assert held(final["SKU-B"]) == held(after["SKU-B"]) + 2

    # PAID went only to locked orders: nothing was dead-lettered along the way.
    assert list(read_to_end(kafka, [kafka.topics.deadletter])) == []
