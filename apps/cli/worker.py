"""`lockstock worker`: run the Faust lock engine."""

from __future__ import annotations

import gc
import logging
import time

import click

from apps.cli import cli
from apps.cli.options import settings_options
from lockstock.kafka import kafka_for
from lockstock.settings import Settings, parse_port

# CPython collects its youngest generation every 700 allocations by default. A worker holding a
# hot sale (hundreds of thousands of cached orders, deadlines and index entries) then spent more
# time in the collector than in the decisions: with 100,000 open reservations on one SKU an
# 8,000-order burst ran at 1,000-1,600 lines/s with 8.7-9.2 s of GC over the run, and at
# 3,700-4,000 lines/s with 1.8-2.7 s after this change (docs/benchmarks.md).
GC_THRESHOLDS = (50_000, 20, 100)

logger = logging.getLogger(__name__)


@cli.command()
@settings_options
@click.option("--web-port", help="Port of the worker's web views (/ready/, /stock/) [env LOCKSTOCK_WEB_PORT, default 6066].")
@click.option("--loglevel", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"]))
def worker(settings: Settings, web_port: str | None, loglevel: str) -> None:
    """Run the lock engine worker (Faust) until Ctrl-C / SIGTERM.

    Provisions missing topics first. Without KAFKA_BOOTSTRAP_SERVERS it starts the embedded
    broker for its own lifetime (memory only: state is gone when it stops). State stores
    live under LOCKSTOCK_DATA_DIR/faust.
    """
    if web_port is not None:
        settings = settings.with_(web_port=parse_port(web_port, "--web-port"))
    catalog = settings.catalog()  # a bad channels file is a one-line error before anything starts
    gc.set_threshold(*GC_THRESHOLDS)
    started = time.monotonic()
    with kafka_for(settings) as kafka:
        kafka.create_topics()
        from faust.worker import Worker

        from streams.app import create_app

        app = create_app(kafka)

        @app.on_rebalance_complete.connect
        async def _report_ready(*args, **kwargs) -> None:
            logger.info("lockstock worker ready in %.1fs", time.monotonic() - started)

        click.echo(
            f"lockstock worker: broker {kafka.bootstrap} ({kafka.profile.name} profile), "
            f"web http://{settings.web_host}:{settings.web_port}/ready/, data {settings.data_dir}, "
            f"catalog {catalog.source} ({len(catalog.regions)} regions, {len(catalog.channels)} channels)"
        )
        try:
            Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False).execute_from_commandline()
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise
