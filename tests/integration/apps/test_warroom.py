"""The war room in a real browser (headless Chromium through Playwright) against a real worker:
the page, open before the first order, follows the stream live and ends up showing exactly the
engine's state (the worker's /stock/{sku}/ view), the alerts on inventory.alerts, the units sold
per channel from the decisions, and talking points drawn from them. A screenshot is kept as an
artifact (``$LOCKSTOCK_ARTIFACTS`` or tests/artifacts/warroom.png).

Also: `lockstock up --demo` as a user runs it, stopped with SIGTERM mid-stream."""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from apps.client import LockstockClient
from apps.readback import read_to_end
from apps.supervise import fetch_json
from apps.warroom.service import WarRoomService
from apps.warroom.talk import channel_name
from lockstock.broker.embedded import free_port
from lockstock.clock import now_ms

pytestmark = pytest.mark.integration

LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("LOCKSTOCK_ARTIFACTS") or Path(__file__).resolve().parents[2] / "artifacts")
SETTLE_TIMEOUT_S = 90.0
POLL_S = 0.25
HOUR_MS = 3600 * 1000
SKUS = ("WR-RING", "WR-BAND")
# (channel, ship-to region: "" = the channel's own, sku, units per order, orders)
ORDERS = (("tiktok-us", "", "WR-RING", 2, 20), ("tiktok-eu", "", "WR-RING", 1, 28), ("shopee-my", "", "WR-RING", 1, 4),
          ("amazon-us", "", "WR-BAND", 2, 8), ("amazon-eu", "", "WR-BAND", 1, 12), ("youtube-us", "EU", "WR-BAND", 1, 2))


def chromium() -> str:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no Chromium on this machine: install the Debian package `chromium` "
                "(`make test` does so when run as root) to test the war room in a real browser")


def number(text: str) -> int:
    return int(text.replace(",", "").split()[0])


def drive_the_stream(client: LockstockClient) -> tuple[set[str], str, list[str]]:
    """Stock, a restock in transit, a paused channel, orders on six channels in three regions
    (round-robin, so no region's share jumps), one order too big. Returns (order ids, the order
    to cancel, orders to pay)."""
    client.set_stock("WR-RING", 100, {"US": 40, "EU": 30, "SEA": 10}, flex_pct=20)
    client.set_stock("WR-BAND", 60, {"US": 24, "EU": 24}, flex_pct=20)
    client.command("WR-RING", "RESTOCK", quantity=500, region="US", warehouse="LA", eta=now_ms() + 36 * HOUR_MS)
    client.command("WR-BAND", "PAUSE_CHANNEL", channel="shopee-th")
    client.flush()
    queues = [[(channel, region, sku, qty, i) for i in range(count)] for channel, region, sku, qty, count in ORDERS]
    ids = set()
    while any(queues):
        for queue in queues:
            if queue:
                channel, region, sku, qty, i = queue.pop(0)
                order_id = f"wr-{channel}-{i}"
                client.place_order(order_id, [(sku, qty)], channel=channel, buyer=f"{channel}-buyer-{i}", region=region)
                ids.add(order_id)
    client.place_order("wr-whale", [("WR-BAND", 50)], channel="amazon-eu", buyer="whale")
    ids.add("wr-whale")
    client.flush()
    return ids, "wr-tiktok-eu-0", [f"wr-tiktok-us-{i}" for i in range(5)]


def shown_state(page, views: dict[str, dict]) -> dict[str, dict]:
    """What the page shows for each SKU, in the shape of ``engine_state``."""
    def text(test_id: str) -> str:
        return page.get_by_test_id(test_id).inner_text(timeout=5000)

    shown = {}
    for sku, view in views.items():
        shown[sku] = {
            "total": number(text(f"total-{sku}")), "available": number(text(f"available-{sku}")),
            "reserved": number(text(f"reserved-{sku}")), "in_transit": number(text(f"in-transit-{sku}")),
            "low": page.get_by_test_id(f"low-{sku}").locator("xpath=..").get_attribute("data-state") == "low",
            "regions": {r: (number(text(f"region-remaining-{sku}-{r}")), number(text(f"region-sold-{sku}-{r}")))
                        for r in view["regions"]},
        }
    shown["overall"] = {"available": number(text("overall-available")), "reserved": number(text("overall-reserved")),
                        "in_transit": number(text("overall-in-transit"))}
    return shown


def engine_state(views: dict[str, dict], low_pct: float) -> dict[str, dict]:
    """The same numbers from the worker's views: the engine's state of record."""
    expected = {}
    for sku, v in views.items():
        expected[sku] = {
            "total": v["total"], "available": v["available"], "reserved": v["locked"] + v["paid"],
            "in_transit": sum(t["qty"] for t in v["in_transit"]),
            "low": v["low_stock"] or v["available"] < math.ceil(v["total"] * low_pct / 100),
            "regions": {r: (x["free"], x["locked"] + x["paid"] + x["shipped"]) for r, x in v["regions"].items()},
        }
    expected["overall"] = {"available": sum(v["available"] for v in views.values()),
                           "reserved": sum(v["locked"] + v["paid"] for v in views.values()),
                           "in_transit": sum(t["qty"] for v in views.values() for t in v["in_transit"])}
    return expected


def curve_ends(page) -> dict[str, int]:
    """The last point of each channel's line in the overall consumption chart, by legend label."""
    return page.evaluate("""() => Object.fromEntries(Chart.getChart(document.getElementById('overall-curve'))
        .data.datasets.map(d => [d.label, d.data.length ? d.data[d.data.length - 1].y : 0]))""")


@pytest.mark.timeout(600)
def test_the_war_room_shows_the_engines_state_live_in_a_browser(kafka, workers):
    browser_path = chromium()
    from playwright.sync_api import expect, sync_playwright

    worker = workers.start()
    worker.wait_ready()
    catalog = kafka.settings.catalog()
    client = LockstockClient(kafka)
    with WarRoomService(kafka, catalog, "127.0.0.1", free_port()) as room, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page_errors: list[str] = []
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.goto(room.url)
            expect(page.get_by_test_id("feed-state")).to_have_text("live", timeout=30_000)

            # The stream, while the page is open: everything below reaches it over /api/events.
            ids, cancelled, paid = drive_the_stream(client)
            first = client.decisions(ids)
            for order_id in paid:
                assert first[order_id][0]["status"] == "LOCKED", first[order_id]
                client.order_event(order_id, "PAID", channel="tiktok-us")
            assert first[cancelled][0]["status"] == "LOCKED", first[cancelled]
            client.order_event(cancelled, "CANCELLED", channel="tiktok-eu", reason="buyer cancelled")
            client.flush()
            final = final_decisions(client, ids, released=cancelled)

            # Settled: the engine holds the payments and the release; then the page must agree.
            deadline = time.monotonic() + SETTLE_TIMEOUT_S
            while True:
                views = {sku: fetch_json(f"{worker.url}/stock/{sku}/")[1] for sku in SKUS}
                expected = engine_state(views, catalog.rules.replenish_below_pct)
                settled = views["WR-RING"]["paid"] == 2 * len(paid)
                shown = shown_state(page, views) if settled else None
                if settled and shown == expected:
                    break
                if time.monotonic() > deadline:
                    assert shown == expected, "the page does not show the engine's state"
                time.sleep(POLL_S)

            ring = views["WR-RING"]
            assert expected["WR-RING"]["in_transit"] == 500 and ring["in_transit"][0]["warehouse"] == "LA"
            assert expected["WR-RING"]["reserved"] == ring["locked"] + ring["paid"] and ring["paid"] == 10
            expect(page.get_by_test_id("in-transit-eta-WR-RING")).to_have_text(re.compile(r"^LA · 3[56] h$"))
            expect(page.get_by_test_id("channel-WR-BAND-shopee-th")).to_contain_text("paused")

            # Alerts: the feed shows every alert on inventory.alerts, once.
            on_topic = {alert["alert_id"]: alert["type"] for alert in alerts_on_topic(kafka)}
            assert "FLEX_TRANSFER" in on_topic.values() and "CHANNEL_PAUSED" in on_topic.values(), on_topic
            items = page.get_by_test_id("alert-item")
            expect(items).to_have_count(len(on_topic), timeout=30_000)
            assert {items.nth(i).get_attribute("data-alert-id"): items.nth(i).get_attribute("data-type")
                    for i in range(items.count())} == on_topic

            # Curves: each channel's line ends at the units its orders still hold.
            sold = Counter()
            for decision in final.values():
                if decision["status"] == "LOCKED":
                    sold[decision["channel"]] += sum(line["qty"] for line in decision["lines"])
            names = {c.id: channel_name(c.id, c.platform) for c in catalog.channels.values()}
            page.wait_for_function("n => Chart.getChart(document.getElementById('overall-curve')).data.datasets.length == n",
                                   arg=len([c for c in sold if sold[c]]), timeout=30_000)
            assert {label: y for label, y in curve_ends(page).items() if y} == {names[c]: n for c, n in sold.items() if n}

            # Header counts and talking points come from the same stream.
            statuses = Counter(d["status"] for d in final.values())
            expect(page.get_by_test_id("stream-orders")).to_have_text(str(len(ids)))
            expect(page.get_by_test_id("stream-rejected")).to_have_text(str(statuses["REJECTED"]))
            points = page.get_by_test_id("talking-point")
            expect(points.filter(has_text="LA warehouse restocks in 36 h: 500 more WR-RING on the way.")).to_have_count(1)
            assert statuses["REJECTED"] >= 1 and page_errors == []

            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            screenshot = ARTIFACTS / "warroom.png"
            page.screenshot(path=str(screenshot))
            assert screenshot.stat().st_size > 10_000
            print(f"\nwar room screenshot: {screenshot}")
        finally:
            browser.close()


def final_decisions(client: LockstockClient, ids: set[str], *, released: str) -> dict[str, dict]:
    """The latest decision per order (one partition per order id: the last read is the latest),
    once every order has one and ``released`` has been released."""
    def latest(records: list) -> dict[str, dict]:
        return {decoded.value["order_id"]: decoded.value for _, decoded in records}

    def done(records: list) -> bool:
        seen = latest(records)
        return ids <= set(seen) and seen[released]["status"] == "RELEASED"

    return latest(client.read_until([client.topics.orders_decisions], done, timeout=60))


def alerts_on_topic(kafka) -> list[dict]:
    return [kafka.codec.decode(r.value, topic=r.topic).value for r in read_to_end(kafka, [kafka.topics.inventory_alerts])]


@pytest.mark.timeout(300)
def test_up_serves_the_war_room_while_the_demo_plays_and_stops_on_sigterm(broker, tmp_path):
    port, tag = free_port(), uuid.uuid4().hex[:10]
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "LOCKSTOCK_DATA_DIR": str(tmp_path / "state"),
           "LOCKSTOCK_TOPIC_PREFIX": f"t{tag}", "LOCKSTOCK_APP_ID": f"lockstock-t{tag}", "PYTHONUNBUFFERED": "1"}
    env.pop("LOCKSTOCK_CHANNELS_FILE", None)
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "lockstock", "up", "--web-port", str(port), "--demo",
                                    "--demo-seconds", "40"], stdout=out, stderr=subprocess.STDOUT, env=env,
                                   stdin=subprocess.DEVNULL)
    try:
        deadline, snapshot = time.monotonic() + 120, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status, snapshot = fetch_json(f"http://127.0.0.1:{port}/api/snapshot")
            except (OSError, ValueError):
                status = None
            if status == 200 and snapshot["overall"]["sold"] > 0 and snapshot["stream"]["alerts"] > 0:
                break
            time.sleep(POLL_S)
        output = log.read_text()
        assert snapshot and snapshot["overall"]["sold"] > 0 and snapshot["stream"]["alerts"] > 0, output
        assert {c["sku"] for c in snapshot["skus"]} == {"BRZ-RING-01", "BRZ-BAND-02", "BRZ-PEND-03"}
        assert f"war room   http://127.0.0.1:{port}/" in output
        assert f"KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap} LOCKSTOCK_TOPIC_PREFIX=t{tag}-demo-" in output
        worker_pid = int(re.search(r"worker pid (\d+) ready", output).group(1))
    finally:
        process.send_signal(signal.SIGTERM)  # mid-stream
        code = process.wait(60)
    output = log.read_text()
    assert code == 0 and output.rstrip().endswith("stopped."), output
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)
