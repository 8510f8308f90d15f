"""Reading what platforms send: the JSON-shape checks the adapters share.

Every check raises PayloadError saying what is wrong and where, so a malformed delivery is dead-lettered
with a reason instead of failing with a KeyError. The wording of each message is part of the adapters'
behaviour (operators read it in dead letters), so helpers whose only difference is wording stay
separate (``load_object`` for TikTok / Shopee, ``utf8_json_object`` for the generic site / Amazon)
or take their messages from the caller (``iso_epoch_ms``).

``status_records`` is the one piece of logic above the shape checks: TikTok and Shopee both push
"order X is now in status S", which becomes the same OrderPlaced / OrderEvent records. Their stock
pushers are alike too (one call per product / item, SKUs found in connector.skus), so the batching and
the answer for an unlisted SKU live here once (``batches_by_listing``, ``refuse_unlisted``).
"""

from __future__ import annotations

import json
from datetime import datetime
from dataclasses import replace
from typing import Any, Callable, Hashable, Mapping, Sequence, TypeGuard, TypeVar

from connectors.base import (
    ApiCall, CallOutcome, Emit, PayloadError, PushResult, StockPush, order_event, order_placed,
)

MAX_SECONDS = 10**11  # a Unix time in seconds; anything larger is milliseconds or garbage
MAX_UNITS = 2**31 - 1  # OrderLine.qty is an Avro int

ListingId = TypeVar("ListingId", bound=Hashable)  # a product id (TikTok) or an item id (Shopee)


# ---- bodies ----------------------------------------------------------------------------------
def load_object(body: bytes, what: str) -> dict[str, Any]:
    """The JSON object in ``body``; PayloadError for anything else (bytes, list, number, ...)."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise PayloadError(f"{what} body is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"{what} body is not JSON: {str(exc)[:80]}") from None
    if not isinstance(payload, dict):
        raise PayloadError(f"{what} body is a JSON {type(payload).__name__}, expected an object")
    return payload


def utf8_json_object(body: bytes, what: str) -> dict[str, Any]:
    """The JSON object in ``body`` (UTF-8), in the generic and Amazon adapters' wording."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"{what} is not UTF-8 JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PayloadError(f"{what} must be a JSON object, got {type(doc).__name__}")
    return doc


# ---- values ----------------------------------------------------------------------------------
def is_whole(value: Any) -> TypeGuard[int]:
    """An int that is not a bool (JSON ``true`` would otherwise pass as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def identifier(value: Any, where: str) -> str:
    """A platform id, which TikTok and Shopee send as a string or a number."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if is_whole(value):
        return str(value)
    raise PayloadError(f"{where} is missing or not an id: {value!r}"[:200])


def unix_seconds(value: Any, where: str) -> int:
    if not is_whole(value) or not 0 < value < MAX_SECONDS:
        raise PayloadError(f"{where} must be a Unix time in seconds, got {value!r}"[:200])
    return value


def iso_epoch_ms(text: str, not_iso: str, no_zone: str) -> int:
    """Epoch ms of an ISO-8601 timestamp that carries its offset; PayloadError(``not_iso``) when it
    does not parse, PayloadError(``no_zone``) when it has no offset (a local time is ambiguous)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PayloadError(not_iso) from None
    if moment.tzinfo is None:
        raise PayloadError(no_zone)
    return int(moment.timestamp() * 1000)


def mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be an object, got {type(value).__name__}")
    return value


def text(value: Any) -> str | None:
    """The stripped string, or None for a missing, blank or non-string value."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def required_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(f"{what} is missing or not a non-empty string (got {value!r})")
    return value.strip()


def add_line(totals: dict[str, int], sku: Any, qty: Any, where: str) -> None:
    """Add one line to the per-SKU totals (a SKU listed twice is one line with both quantities)."""
    if not isinstance(sku, str) or not sku.strip():
        raise PayloadError(f"{where} has no seller SKU")
    if not is_whole(qty) or qty <= 0:
        raise PayloadError(f"{where} ({sku.strip()}) has quantity {qty!r}; expected a whole number > 0"[:200])
    total = totals.get(sku.strip(), 0) + qty
    if total > MAX_UNITS:
        raise PayloadError(f"{where} ({sku.strip()}) adds up to {total} units, more than an order line can hold")
    totals[sku.strip()] = total


# ---- order status pushes (TikTok, Shopee) ----------------------------------------------------
def order_status(data: Mapping[str, Any], key: str, order_id: str) -> str:
    """``data[key]`` upper-cased; statuses are compared case-insensitively."""
    status = text(data.get(key))
    if status is None:
        raise PayloadError(f"order {order_id}: data.{key} is missing")
    return status.upper()


def status_records(platform: str, channel: str, order_id: str, changed_s: int, data: Mapping[str, Any], *,
                   lines: list[tuple[str, int]], buyer_key: str, event: str | None) -> tuple[Emit, ...]:
    """OrderPlaced when the delivery carries the order's ``lines`` (buyer ``data[buyer_key]``, placed
    at ``data.create_time``), then ``event`` (PAID, CANCELLED, SHIPPED or None) at ``changed_s``.

    The event id is "<order>:<event>", so the several statuses that mean the same thing yield one
    event at the engine, whichever arrives first; OrderPlaced is deduped by order id there too.
    """
    records: list[Emit] = []
    if lines:
        buyer = identifier(data[buyer_key], f"data.{buyer_key}") if data.get(buyer_key) not in (None, "") else ""
        created = data.get("create_time", changed_s)
        records.append(order_placed(
            platform, order_id, channel, f"{platform}:{buyer}" if buyer else "",
            unix_seconds(created, "data.create_time") * 1000, lines))
    if event:
        reason = text(data.get("cancel_reason")) if event == "CANCELLED" else None
        records.append(order_event(platform, order_id, channel, event, f"{order_id}:{event}",
                                   changed_s * 1000, reason=reason))
    return tuple(records)


# ---- stock pushes by listing (TikTok, Shopee) ------------------------------------------------
def batches_by_listing(pushes: Sequence[StockPush], listing: Mapping[str, tuple[ListingId, Any]], max_batch: int
                       ) -> tuple[list[tuple[ListingId, list[StockPush]]], tuple[StockPush, ...]]:
    """([(product or item id, pushes of at most ``max_batch``)], unlisted pushes), ``listing`` mapping a
    seller SKU to (product or item id, ...). A SKU pushed twice: the later push wins (and is the one
    answered), since the sync settles pushes by SKU."""
    by_listing: dict[ListingId, dict[str, StockPush]] = {}
    unlisted: dict[str, StockPush] = {}
    for push in pushes:
        ids = listing.get(push.sku)
        if ids is None:
            unlisted[push.sku] = push
        else:
            by_listing.setdefault(ids[0], {})[push.sku] = push
    batches: list[tuple[ListingId, list[StockPush]]] = []
    for key, latest in by_listing.items():
        entries = list(latest.values())
        batches.extend((key, entries[start:start + max_batch]) for start in range(0, len(entries), max_batch))
    return batches, tuple(unlisted.values())


def refuse_unlisted(call: ApiCall, listed: Mapping[str, Any], answer: Callable[[ApiCall], CallOutcome],
                    needs: str) -> CallOutcome:
    """``answer`` for the pushes whose SKU is ``listed``; each other push (it rode along in the call
    so that it is answered at all) is a final failure naming the connector.skus entry it ``needs``."""
    outcome = answer(replace(call, pushes=tuple(p for p in call.pushes if p.sku in listed)))
    unlisted = tuple(PushResult(p, ok=False, reason=f"{p.sku} is not listed on {p.channel} "
                                f"(no connector.skus entry with its {needs})")
                     for p in call.pushes if p.sku not in listed)
    return replace(outcome, results=outcome.results + unlisted)


def fail_all(call: ApiCall, retryable: bool, reason: str) -> CallOutcome:
    return CallOutcome(tuple(PushResult(p, ok=False, retryable=retryable, reason=reason) for p in call.pushes))
