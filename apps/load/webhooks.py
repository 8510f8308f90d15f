"""Orders through the webhook gateway during a chaos run, sent the way a marketplace sends them.

A seeded share of the run's orders becomes signed Shopify ``orders/create`` deliveries posted to
a `lockstock gateway` the run starts itself (the rest go straight to Kafka, as before). The
sender keeps going the way Shopify does: a 503, a timeout or a refused connection is retried with
the same webhook id, so the gateway's dedupe (and, past it, the engine's) keeps it one order.

Afterwards the promise the gateway makes is checked: every delivery it answered 2xx
("accepted" or "duplicate") is on orders.placed, read back from the broker, and has a decision.
A missing one fails the run; 503s are allowed (a broker was down) and are counted."""

from __future__ import annotations

import json
import queue
import random
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from apps.load.tally import Tally
from apps.supervise import ServiceProcess
from connectors.signatures import shopify_signature
from lockstock.broker.embedded import free_port
from lockstock.catalog import Catalog
from lockstock.errors import SettingsError
from lockstock.kafka import Kafka
from lockstock.settings import Settings

PLATFORM = "shopify"
SECRET_ENV = "LOCKSTOCK_SHOPIFY_SECRET"
AUTO_SHARE_ON_OWN_CLUSTER = 0.15
SENDERS = 8  # deliveries in flight at once: a broker stall holds each for seconds
ANSWER_TIMEOUT_S = 30.0
RETRY_BACKOFF_S = (0.2, 0.5, 1.0, 2.0)  # then 2 s between tries, as long as the run waits
ACCEPTED, DUPLICATE = "accepted", "duplicate"


@dataclass(frozen=True)
class Delivery:
    order_id: str  # as the gateway will key it: shopify:<number>
    delivery_id: str  # X-Shopify-Webhook-Id: the same on every retry
    body: bytes
    headers: dict[str, str]


def shop_domain(catalog: Catalog) -> tuple[str, str]:
    """(channel id, shop domain) of the catalog's Shopify store channel."""
    stores = [c for c in catalog.channels.values() if c.platform == PLATFORM and not c.store]
    if len(stores) != 1 or not stores[0].account:
        raise SettingsError(f"--webhooks sends Shopify orders: the catalog needs exactly one {PLATFORM} store "
                            f"channel with an account (its shop domain), it has {len(stores)}")
    return stores[0].id, stores[0].account


def iso_utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")


def shopify_delivery(order: dict, number: int, channel: str, shop: str, secret: str) -> tuple[Delivery, dict]:
    """The Shopify ``orders/create`` delivery of a load-test order, and the OrderPlaced the
    gateway will make of it (what the run's tally expects back)."""
    body = json.dumps({
        "id": number, "created_at": iso_utc(order["placed_at"]), "source_name": "web",
        "customer": {"id": order["buyer_id"]},
        "line_items": [{"sku": line["sku"], "quantity": line["qty"]} for line in order["lines"]],
    }, separators=(",", ":")).encode()
    delivery_id = f"lockstock-load-{number}"
    headers = {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
               "X-Shopify-Shop-Domain": shop, "X-Shopify-Webhook-Id": delivery_id,
               "X-Shopify-Hmac-SHA256": shopify_signature(secret, body)}
    placed = {**order, "order_id": f"{PLATFORM}:{number}", "channel": channel,
              "buyer_id": f"{PLATFORM}:{order['buyer_id']}"}
    return Delivery(placed["order_id"], delivery_id, body, headers), placed


def retry_pause(attempt: int) -> float:
    return RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]


def answer_kind(status: int, body: Any) -> str:
    """accepted / duplicate (2xx: the gateway vouches the order is on the broker), retry (503),
    or refused (any other answer: the order will never be accepted as sent)."""
    if status == 200 and isinstance(body, dict) and body.get("status") in (ACCEPTED, DUPLICATE):
        return body["status"]
    if status == 503:
        return "retry"
    return "refused"


def start_gateway(settings: Settings, log_dir: Path, secret: str) -> ServiceProcess:
    """`lockstock gateway` as a child process on a free port, Shopify's route signed with ``secret``."""
    port = free_port()
    gateway = ServiceProcess(settings, log_dir / "gateway.log", args=("gateway", "--host", "127.0.0.1", "--port", str(port)),
                             port=port, ready_path="/health", env={SECRET_ENV: secret})
    gateway.start().wait_ready()
    return gateway


class WebhookSender:
    """Posts deliveries on threads of its own until each is answered 2xx, refused, or the run
    stops waiting. ``outcomes``: order id -> accepted / duplicate / refused HTTP n / unanswered."""

    def __init__(self, url: str, senders: int = SENDERS) -> None:
        self.url = url.rstrip("/") + f"/webhooks/{PLATFORM}"
        self.todo: queue.Queue = queue.Queue()
        self.outcomes: dict[str, str] = {}
        self.counts: Counter = Counter()
        self.refusals: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._work, name=f"webhook-sender-{n}", daemon=True)
                         for n in range(senders)]
        for thread in self._threads:
            thread.start()

    def send(self, delivery: Delivery) -> None:
        self.todo.put(delivery)

    def drain(self, timeout_s: float) -> bool:
        """Wait until every delivery is answered for good; False when time ran out."""
        deadline = time.monotonic() + timeout_s
        while self.todo.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.1)
        return not self.todo.unfinished_tasks

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(ANSWER_TIMEOUT_S + 5)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                delivery = self.todo.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._deliver(delivery)
            finally:
                self.todo.task_done()

    def _deliver(self, delivery: Delivery) -> None:
        attempt = 0
        while not self._stop.is_set():
            status, body, failure = self._post(delivery)
            kind = answer_kind(status, body) if failure is None else "retry"
            with self._lock:
                if failure is not None:
                    self.counts[failure] += 1
                elif kind == "retry":
                    self.counts["answered_503"] += 1
                else:
                    self.counts[kind] += 1
                    # A first answer wins: a duplicate after an accepted retry says nothing new.
                    self.outcomes.setdefault(delivery.order_id, kind if kind != "refused" else f"refused HTTP {status}")
                    if kind == "refused":
                        self.refusals.append({"order_id": delivery.order_id, "status": status, "answer": body})
                    return
            self._stop.wait(retry_pause(attempt))
            attempt += 1
        with self._lock:
            self.outcomes.setdefault(delivery.order_id, "unanswered")

    def _post(self, delivery: Delivery) -> tuple[int, Any, str | None]:
        """(status, JSON answer, None), or (0, None, why) when no answer came."""
        request = urllib.request.Request(self.url, data=delivery.body, headers=delivery.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=ANSWER_TIMEOUT_S) as response:
                return response.status, _json(response.read()), None
        except urllib.error.HTTPError as exc:
            return exc.code, _json(exc.read()), None
        except TimeoutError:
            return 0, None, "timed_out"
        except OSError as exc:  # refused connection, reset, or a timeout urllib wrapped
            return 0, None, "timed_out" if "timed out" in str(exc) else "no_connection"


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw[:200].decode(errors="replace")


class WebhookOrders:
    """Diverts a seeded share of a load run's orders to the gateway (LoadRun's ``divert`` hook)
    and checks afterwards that every order the gateway answered 2xx for reached the broker."""

    def __init__(self, share: float, seed: int, run_number: int, catalog: Catalog, gateway_url: str, secret: str,
                 sender: WebhookSender | None = None) -> None:
        self.share = share
        self.rng = random.Random(f"webhooks-{seed}")  # apart from the order maker's: its orders stay as they were
        self.channel, self.shop = shop_domain(catalog)
        self.secret = secret
        self.numbers = iter(range(run_number * 10_000_000 + 1, (run_number + 1) * 10_000_000))
        self.sender = sender or WebhookSender(gateway_url)
        self.sent: list[str] = []

    def divert(self, order: dict, twice: bool) -> dict | None:
        """None: the order goes to Kafka as before. Else the order as the gateway will produce it."""
        if self.rng.random() >= self.share:
            return None
        delivery, placed = shopify_delivery(order, next(self.numbers), self.channel, self.shop, self.secret)
        for _ in range(2 if twice else 1):  # a platform's redelivery: the same webhook id again
            self.sender.send(delivery)
        self.sent.append(delivery.order_id)
        return placed

    def finish(self, timeout_s: float) -> bool:
        drained = self.sender.drain(timeout_s)
        self.sender.stop()
        return drained

    def report(self, kafka: Kafka, tally: Tally) -> dict[str, Any]:
        outcomes = dict(self.sender.outcomes)
        vouched = sorted(o for o, kind in outcomes.items() if kind in (ACCEPTED, DUPLICATE))
        on_topic = keys_on_topic(kafka, kafka.topics.orders_placed, set(vouched))
        not_on_topic = [o for o in vouched if o not in on_topic]
        undecided = [o for o in vouched if o not in tally.first]
        missing = sorted(set(not_on_topic) | set(undecided))
        counts = self.sender.counts
        return {
            "platform": PLATFORM, "share": self.share, "orders": len(self.sent),
            "answered_2xx": len(vouched), "accepted": counts[ACCEPTED], "duplicate": counts[DUPLICATE],
            "retried_503": counts["answered_503"], "retried_timeout": counts["timed_out"],
            "retried_no_connection": counts["no_connection"],
            "refused": len(self.sender.refusals), "refusals_sample": self.sender.refusals[:5],
            "unanswered": sum(1 for o in self.sent if outcomes.get(o, "unanswered") == "unanswered"),
            "missing": len(missing), "missing_sample": missing[:10],
            "not_on_orders_placed": len(not_on_topic), "without_decision": len(undecided),
        }


def keys_on_topic(kafka: Kafka, topic: str, wanted: set[str], timeout_s: float = 60.0) -> set[str]:
    """Which of ``wanted`` are keys of ``topic``'s records, reading every partition from its start
    to its end now (or until all are found, or the deadline)."""
    found: set[str] = set()
    if not wanted:
        return found
    with kafka.reader(beginning=[topic], raw=[topic]) as reader:
        deadline = time.monotonic() + timeout_s
        while not reader.caught_up and found != wanted and time.monotonic() < deadline:
            for record in reader.poll(0.5, 1000):
                key = (record.key or b"").decode(errors="replace")
                if key in wanted:
                    found.add(key)
    return found


def new_secret() -> str:
    return secrets.token_hex(16)
