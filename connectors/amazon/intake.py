"""SP-API ORDER_CHANGE notifications -> lockstock records: one SQS message body in, an Intake out.

There is no HTTP signature to check: only holders of the AWS credentials can read the queue, and
only Amazon can write to it.

Mapping (``Summary.OrderStatus`` of an ORDER_CHANGE, any OrderChangeType):
- ``Pending``   -> OrderPlaced (lines from ``Summary.OrderItems``: SellerSKU x Quantity)
- ``Unshipped`` -> OrderPlaced + OrderEvent PAID (payment authorised). The engine keys orders by
  order_id, so the OrderPlaced is a no-op when the Pending one was already seen ("first sight"
  wins), and lifecycle event ids are ``amazon:<order>:<TYPE>``, so a second notification carrying
  the same status (a BuyerRequestedChange while Unshipped) never pays or cancels twice.
- ``Canceled`` -> CANCELLED (reason: ``OrderChangeTrigger.ChangeReason``); ``Shipped`` -> SHIPPED.
- Any other status (PartiallyShipped, Unfulfillable, InvoiceUnconfirmed, PendingAvailability) and
  any other NotificationType is ignored with the reason. delivery_id = NotificationMetadata.NotificationId.
- Channel: the catalog's amazon channel whose ``account`` is ``Summary.MarketplaceId``.
- buyer_id: ORDER_CHANGE carries no buyer identity (buyer data is restricted, RDT-only), so each
  order is its own buyer ``amazon:buyer-of-<order>``; one shared "anonymous" buyer would make a
  triggered purchase limit reject every Amazon buyer at once.
- SQS may carry the notification as is (SP-API's SQS destination) or inside an SNS envelope
  (``{"Type": "Notification", "Message": "<json>"}``, when the queue is fed by an SNS topic): both accepted.

Followed: https://developer-docs.amazon.com/sp-api/docs/tutorial-subscribe-to-order-change-notification
and the OrderChangeNotification JSON schema (selling-partner-api-models, schemas/notifications).
"""

from __future__ import annotations

from typing import Any, Mapping

from connectors.base import Emit, Intake, PayloadError, channel_by_account, order_event, order_placed
from connectors.payload import is_whole, iso_epoch_ms, required_text, utf8_json_object
from lockstock.catalog import Catalog

PLATFORM = "amazon"

ACTED_ON = ("Pending", "Unshipped", "Canceled", "Shipped")
EVENT_OF_STATUS = {"Unshipped": "PAID", "Canceled": "CANCELLED", "Shipped": "SHIPPED"}


class AmazonNotifications:
    """Turns one SQS message body (an SP-API notification) into an Intake."""

    platform = PLATFORM

    def __init__(self, catalog: Catalog, settings: Mapping[str, Any] | None = None) -> None:
        self.catalog = catalog
        self.settings = dict(settings or {})

    def intake(self, body: bytes) -> Intake:
        """The records this body stands for; PayloadError if it is malformed."""
        doc = utf8_json_object(body, "SQS message body")
        if "Type" in doc and "NotificationType" not in doc:  # an SNS envelope
            if doc.get("Type") != "Notification":
                return Intake(required_text(doc.get("MessageId"), "SNS MessageId"),
                              ignored=f"SNS message of type {doc.get('Type')!r}, not a notification")
            message = doc.get("Message")
            if not isinstance(message, str):
                raise PayloadError("SNS envelope has no Message string")
            doc = utf8_json_object(message.encode(), "SNS Message")
        metadata = _object(doc.get("NotificationMetadata"), "NotificationMetadata")
        delivery_id = required_text(metadata.get("NotificationId"), "NotificationMetadata.NotificationId")
        kind = doc.get("NotificationType")
        if kind != "ORDER_CHANGE":
            return Intake(delivery_id, ignored=f"notification type {kind!r} is not ORDER_CHANGE")
        change = _object(_object(doc.get("Payload"), "Payload").get("OrderChangeNotification"),
                         "Payload.OrderChangeNotification")
        order = required_text(change.get("AmazonOrderId"), "AmazonOrderId")
        summary = _object(change.get("Summary"), f"order {order}: Summary")
        status = required_text(summary.get("OrderStatus"), f"order {order}: Summary.OrderStatus")
        if status not in ACTED_ON:
            return Intake(delivery_id, ignored=f"order {order} is {status}; lockstock acts on {', '.join(ACTED_ON)}")
        marketplace = required_text(summary.get("MarketplaceId"), f"order {order}: Summary.MarketplaceId")
        channel = channel_by_account(self.catalog, PLATFORM, marketplace)
        given_trigger = change.get("OrderChangeTrigger")
        trigger: dict[str, Any] = given_trigger if isinstance(given_trigger, dict) else {}
        records: list[Emit] = []
        if status in ("Pending", "Unshipped"):
            placed_at = _iso_ms(summary.get("PurchaseDate"), f"order {order}: Summary.PurchaseDate")
            records.append(order_placed(PLATFORM, order, channel, f"amazon:buyer-of-{order}", placed_at,
                                        _lines(summary.get("OrderItems"), order)))
        event = EVENT_OF_STATUS.get(status)
        if event is not None:
            reason = None
            if event == "CANCELLED":
                given = trigger.get("ChangeReason")
                reason = given if isinstance(given, str) and given else "Canceled on Amazon"
            records.append(order_event(PLATFORM, order, channel, event, f"{order}:{event}",
                                       _occurred_at(trigger, metadata, doc, order), reason=reason))
        return Intake(delivery_id, tuple(records))


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _iso_ms(value: Any, what: str) -> int:
    text = required_text(value, what)
    return iso_epoch_ms(text, f"{what} {text!r} is not an ISO-8601 timestamp", f"{what} {text!r} has no time zone")


def _occurred_at(trigger: dict, metadata: dict, doc: dict, order: str) -> int:
    for value, what in ((trigger.get("TimeOfOrderChange"), "OrderChangeTrigger.TimeOfOrderChange"),
                        (metadata.get("PublishTime"), "NotificationMetadata.PublishTime"),
                        (doc.get("EventTime"), "EventTime")):
        if value is not None:
            return _iso_ms(value, f"order {order}: {what}")
    raise PayloadError(f"order {order}: no TimeOfOrderChange, PublishTime or EventTime")


def _lines(items: Any, order: str) -> list[tuple[str, int]]:
    """SellerSKU x Quantity per item; items of one SKU are summed, 0-quantity (cancelled) items skipped."""
    if not isinstance(items, list) or not items:
        raise PayloadError(f"order {order}: Summary.OrderItems must be a non-empty list")
    units: dict[str, int] = {}
    for item in items:
        item = _object(item, f"order {order}: an OrderItems entry")
        sku = required_text(item.get("SellerSKU"), f"order {order}: OrderItems[].SellerSKU")
        qty = item.get("Quantity")
        if not is_whole(qty) or qty < 0:
            raise PayloadError(f"order {order}: item {sku} has Quantity {qty!r}; expected a whole number >= 0")
        if qty:
            units[sku] = units.get(sku, 0) + qty
    return list(units.items())
