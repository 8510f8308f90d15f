"""Amazon Selling Partner API: ORDER_CHANGE notifications from an SQS queue in, listing quantity out.

Amazon has no order webhooks. SP-API publishes notifications to an SQS queue the seller owns; the
gateway reads it with ``consume_notifications`` and deletes a message only once its records are
acknowledged (or dead-lettered). One module per concern:

- ``intake``:   a notification body -> lockstock records (``AmazonNotifications``); pure.
- ``stock``:    listing quantity out, ``patchListingsItem`` per SKU (``AmazonStockPusher``); pure.
- ``signing``:  AWS Signature Version 4 by botocore (``sign_request``).
- ``sqs``:      the queue over the SQS JSON protocol on aiohttp (``SqsSource``, ``notification_source``).
- ``consumer``: the receive / handle / delete loop over any ``NotificationSource``.

Importing this package registers the stock pusher (connectors.config.load_adapters relies on it);
the names below are the ones the rest of lockstock and the tests use.
"""

from connectors.amazon.consumer import Handle, NotificationSource, QueueMessage, consume_notifications
from connectors.amazon.intake import ACTED_ON, EVENT_OF_STATUS, PLATFORM, AmazonNotifications
from connectors.amazon.signing import amz_date, sign_request
from connectors.amazon.sqs import (
    AWS_CREDENTIAL_ENV, SQS_CONTENT_TYPE, SqsError, SqsSource, notification_source, queue_region,
)
from connectors.amazon.stock import DEFAULT_BASE_URL, LISTINGS_PATH, AmazonStockPusher

__all__ = [
    "ACTED_ON", "AWS_CREDENTIAL_ENV", "DEFAULT_BASE_URL", "EVENT_OF_STATUS", "LISTINGS_PATH", "PLATFORM",
    "SQS_CONTENT_TYPE", "AmazonNotifications", "AmazonStockPusher", "Handle", "NotificationSource", "QueueMessage",
    "SqsError", "SqsSource", "amz_date", "consume_notifications", "notification_source", "queue_region",
    "sign_request",
]
