"""The bench's hot-SKU row: does the cost of an order line depend on how many open reservations
its SKU holds? One SKU, the most popular of the pipeline row's mix (its Zipf head), is first
filled with N open reservations (one-unit orders from new buyers, never paid nor cancelled), then
the pipeline row's saturation burst is measured again, the same mix with only that difference.

Unpaid locks expire after their channel's reservation TTL (lockstock/catalog.yaml, 15-60 min), and
an expired reservation no longer weighs on the SKU: the fill goes through the channel with the
longest TTL, must end within FILL_SHARE_OF_TTL of it, and the row says whether the first
reservation was still due to be open when the measurement ended."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from apps.load.deaths import Watchdog
from apps.load.profile import LoadProfile
from apps.load.resources import CpuMeter, per_10k_lines
from apps.load.run import LoadRun
from apps.readback import changelog_topic, read_to_end
from lockstock.catalog import Catalog, Channel
from lockstock.clock import now_ms
from lockstock.kafka import Kafka

FILL_SHARE_OF_TTL = 0.6  # the rest of the TTL is left for the measurement
TARGET_RATIO = 0.8  # the target: within 20 % of the lines/s with no reservations


def longest_ttl_channel(catalog: Catalog) -> Channel:
    return max(catalog.channels.values(), key=lambda c: (c.reservation_ttl_s, c.id))


def still_open(first_placed_ms: int, ttl_s: int, at_ms: int) -> bool:
    """Whether a reservation placed at ``first_placed_ms`` is still within its TTL at ``at_ms``."""
    return at_ms < first_placed_ms + ttl_s * 1000


def hot_row(kafka: Kafka, profile: LoadProfile, reservations: int, orders: int, pipeline_lines_per_s: float | None,
            *, watchdog: Watchdog, pids: list[int], progress: Callable[[str], None]) -> dict[str, Any]:
    """Fill, then measure; every figure of the row, or an ``error`` saying why it has none."""
    channel = longest_ttl_channel(kafka.settings.catalog())
    run = LoadRun(kafka, profile, settle_s=300, watchdog=watchdog)
    sku = run.maker.sku_names[0]  # the Zipf head: the SKU the measured mix buys most
    fill_timeout_s = channel.reservation_ttl_s * FILL_SHARE_OF_TTL
    progress(f"filling {sku} with {reservations} open reservations through {channel.id} (unpaid locks expire after "
             f"{channel.reservation_ttl_s} s there; the fill must end within {fill_timeout_s:.0f} s) ...")
    fill = run.fill(sku, reservations, channel.id, fill_timeout_s, progress)
    row: dict[str, Any] = {"sku": sku, "channel": channel.id, "reservation_ttl_s": channel.reservation_ttl_s,
                           "reservations": reservations, "fill": fill}
    if run.worker_died():
        return {**row, "error": f"a worker died during the fill, with {fill['locked']} reservations open"}
    if fill["locked"] < reservations:
        return {**row, "error": f"the fill left {fill['locked']} of {reservations} reservations open within "
                                f"{fill_timeout_s:.0f} s ({fill['rejected']} rejected, {fill['undecided']} undecided)"}
    progress(f"filled in {fill['seconds']} s; measuring the pipeline burst again: {orders} orders ...")
    meter = CpuMeter(pids).start()
    burst = run.burst(orders)
    cpu_s = meter.seconds()
    expired = not still_open(fill["first_placed_ms"], channel.reservation_ttl_s, now_ms())
    open_at_end = sum(1 for d in run.fill_tally.final.values() if d["status"] == "LOCKED")
    row.update(burst=burst, lines_per_s=burst["lines_per_s"], orders_per_s=burst["orders_per_s"],
               cpu_s=cpu_s, cpu_s_per_10k_lines=per_10k_lines(cpu_s, burst["lines"]),
               open_at_end=open_at_end, expired_before_end=expired)
    if pipeline_lines_per_s:
        ratio = round(burst["lines_per_s"] / pipeline_lines_per_s, 3)
        row.update(vs_pipeline=ratio, within_20_pct=ratio >= TARGET_RATIO)
    if run.worker_died():
        row["error"] = "a worker died during the measurement"
    elif expired:
        row["error"] = "the first reservations expired before the measurement ended: lower --hot-reservations"
    return row


def largest_value(records: Iterable[tuple[bytes | None, bytes | None]]) -> dict[str, Any]:
    """The largest value among (key, value) records, its key, and how many records were read."""
    size, key, count = 0, None, 0
    for record_key, value in records:
        count += 1
        if value is not None and len(value) > size:
            size, key = len(value), record_key
    return {"bytes": size, "key": None if key is None else key.decode(errors="replace"), "records": count}


def largest_changelog_record(kafka: Kafka, progress: Callable[[str], None], timeout_s: float = 600.0) -> dict[str, Any]:
    """The largest record of the stock table's changelog, read back to the end without a group.
    The embedded broker never compacts, so there it is the largest ever written; on Kafka, the
    log cleaner may already have dropped older (perhaps larger) versions of a key."""
    topic = changelog_topic(kafka.settings.app_id, "stock")
    started, last = time.monotonic(), [time.monotonic()]

    def report(read: int, total: int) -> None:
        if time.monotonic() - last[0] >= 5.0:
            last[0] = time.monotonic()
            progress(f"reading {topic}: {read}/{total} records")

    records = ((r.key, r.value) for r in read_to_end(kafka, [topic], timeout=timeout_s, progress=report))
    return {**largest_value(records), "topic": topic, "read_s": round(time.monotonic() - started, 1)}
