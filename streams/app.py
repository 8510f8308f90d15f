"""Build the Faust app from lockstock settings and the broker profile."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust import transport

from lockstock.catalog import Catalog
from lockstock.kafka import Kafka
from lockstock.settings import Settings
from streams.consumer import eager_transport
from streams.recovery import SeekFirstTableManager
from streams.tables import Tables, define_tables

# Faust's own default (2.8 s) would hold table changelog flushes and offset commits longer than
# a live stream's operator wants to replay after a crash.
COMMIT_INTERVAL_S = 1.0
# A few ms of linger lets the producer put a burst's changelog and output records in one batch.
PRODUCER_LINGER_S = 0.005


@dataclass
class Wiring:
    """What agents and views need besides the app: codec, topic handles, tables."""

    kafka: Kafka
    catalog: Catalog
    tables: Tables
    orders_placed: faust.TopicT
    orders_events: faust.TopicT
    lock_requests: faust.TopicT
    inventory_commands: faust.TopicT
    lock_results: faust.TopicT
    order_timers: faust.TopicT
    decisions: faust.TopicT
    alerts: faust.TopicT
    audit: faust.TopicT
    channel_stock: faust.TopicT
    deadletter: faust.TopicT


class LockstockApp(faust.App):
    """Faust's app with its consumer handing records to the agents eagerly (streams/consumer.py),
    on whichever transport the broker profile picks."""

    def _new_transport(self) -> transport.base.Transport:
        base = transport.by_url(self.conf.broker_consumer[0])
        return eager_transport(base)(self.conf.broker_consumer, self)


def group_timing(settings: Settings) -> dict[str, float]:
    """Faust's consumer-group session and heartbeat from the settings (heartbeat a third)."""
    session = float(settings.group_session_timeout_s)
    return {"broker_session_timeout": session, "broker_heartbeat_interval": session / 3}


def create_app(kafka: Kafka) -> faust.App:
    settings = kafka.settings
    datadir = settings.data_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    app = LockstockApp(
        settings.app_id,
        broker=kafka.profile.faust_broker_url(kafka.bootstrap),
        store="rocksdb://",
        datadir=str(datadir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee="at_least_once",
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=COMMIT_INTERVAL_S,
        producer_linger=PRODUCER_LINGER_S,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        autodiscover=False,
        # Faust's default of one standby replica stays: without standbys two workers process
        # about half as much again, but that mode has too few chaos runs behind it yet (it is
        # where the recovery loss fixed in streams/recovery.py showed; docs/benchmarks.md).
        TableManager=SeekFirstTableManager,  # no record is skipped when recovery hands over to the agents
        **{**group_timing(settings), **kafka.profile.faust},  # the embedded broker's own win
    )
    names = kafka.topics

    def topic(name: str) -> faust.TopicT:
        # lockstock provisions its topics (lockstock topics create); Faust must not redeclare them.
        return app.topic(name, key_type=bytes, value_type=bytes, internal=False)

    wiring = Wiring(
        kafka=kafka,
        catalog=settings.catalog(),
        tables=define_tables(app, settings.partitions),
        orders_placed=topic(names.orders_placed),
        orders_events=topic(names.orders_events),
        lock_requests=topic(names.lock_requests),
        inventory_commands=topic(names.inventory_commands),
        lock_results=topic(names.lock_results),
        order_timers=topic(names.order_timers),
        decisions=topic(names.orders_decisions),
        alerts=topic(names.inventory_alerts),
        audit=topic(names.inventory_audit),
        channel_stock=topic(names.channels_stock),
        deadletter=topic(names.deadletter),
    )
    from streams import agents, views

    agents.define_agents(app, wiring)
    views.define_views(app, wiring)
    app.lockstock = wiring  # type: ignore[attr-defined]
    return app
