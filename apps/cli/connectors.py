"""`lockstock gateway` (webhook intake) and `lockstock sync` (stock pushes to marketplaces)."""

from __future__ import annotations

import asyncio
import logging
import signal

import click

from apps.cli import cli
from apps.cli.options import require_cluster, settings_options
from lockstock.kafka import Kafka
from lockstock.settings import Settings, parse_int, parse_port


def _run_until_signal(main) -> None:
    """Run ``main(stop)`` until SIGINT/SIGTERM sets ``stop`` (a clean shutdown: queues flushed)."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


def _connect(settings: Settings, what: str) -> tuple[Kafka, object]:
    require_cluster(settings, what)
    kafka = Kafka.connect(settings)
    kafka.create_topics()
    return kafka, settings.catalog()


@cli.command()
@settings_options
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface to listen on.")
@click.option("--port", default="8080", show_default=True, help="Port for POST /webhooks/<platform>, /health, /stats and /metrics (Prometheus).")
def gateway(settings: Settings, host: str, port: str) -> None:
    """Receive marketplace webhooks, verify them and put them on Kafka.

    Routes: POST /webhooks/shopify, /webhooks/tiktok, /webhooks/shopee, /webhooks/generic
    (Amazon's SQS queue is consumed when connectors.amazon.queue_url is set). A platform is
    served only with its secret: LOCKSTOCK_SHOPIFY_SECRET, LOCKSTOCK_TIKTOK_SECRET,
    LOCKSTOCK_SHOPEE_PARTNER_KEY, LOCKSTOCK_GENERIC_SECRET, or the channels file's connectors
    section; without one its route answers 503. Answers 2xx only once the broker has the
    records; 401 bad signature, 400 malformed (dead-lettered), 503 retry later.
    """
    from connectors.config import webhook_adapters
    from connectors.gateway import Gateway, serve

    port_number = parse_port(port, "--port")
    kafka, catalog = _connect(settings, "serve webhooks")
    adapters = webhook_adapters(catalog)
    for platform, adapter in adapters.items():
        click.echo(f"  /webhooks/{platform}: {'ready' if not isinstance(adapter, Exception) else adapter}")

    async def main(stop: asyncio.Event) -> None:
        await serve(Gateway(kafka, catalog, adapters), host, port_number, stop,
                    on_ready=lambda url: click.echo(f"gateway listening on {url} (broker {kafka.bootstrap})"))

    _run_until_signal(main)


@cli.command()
@settings_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface for /status, /health and /metrics (Prometheus).")
@click.option("--port", default="8081", show_default=True, help="Port for /status (sync lag, counters, leases); 0: none.")
@click.option("--settle-ms", default="500", show_default=True,
              help="How long a decided order still counts as in flight (covers reading decisions before stock).")
@click.option("--max-attempts", default="6", show_default=True, help="Tries per push before it is dead-lettered (1-100).")
@click.option("--cooldown-s", default="60", show_default=True, help="Rest after a dead-lettered push before trying again.")
def sync(settings: Settings, host: str, port: str, settle_ms: str, max_attempts: str, cooldown_s: str) -> None:
    """Push every channel's lease of the stock pool to its marketplace.

    Reads lockstock.channels.stock, orders.placed and orders.decisions; what each listing may
    show follows the channels file (advertise: share_pct, max_units, buffer, floor). Decreases
    go before increases, within each platform's rate budget (rate_limit_per_min per channel;
    Shopify cost points, Amazon 5 req/s burst 10); 429/5xx are retried with backoff and jitter,
    a push that keeps failing is dead-lettered and raises a SYNC_FAILURE alert. Credentials:
    LOCKSTOCK_SHOPIFY_ACCESS_TOKEN, LOCKSTOCK_TIKTOK_SECRET + LOCKSTOCK_TIKTOK_ACCESS_TOKEN,
    LOCKSTOCK_SHOPEE_PARTNER_KEY + LOCKSTOCK_SHOPEE_ACCESS_TOKEN, LOCKSTOCK_AMAZON_ACCESS_TOKEN,
    LOCKSTOCK_GENERIC_SECRET (or the channels file); a platform without them is not pushed.
    """
    from connectors.config import stock_pushers
    from connectors.sync.service import SyncOptions, SyncService

    port_number = parse_port(port, "--port", allow_zero=True)
    options = SyncOptions(
        settle_ms=parse_int(settle_ms, "--settle-ms", minimum=0, maximum=600_000),
        max_attempts=parse_int(max_attempts, "--max-attempts", minimum=1, maximum=100),
        cooldown_s=float(parse_int(cooldown_s, "--cooldown-s", minimum=0, maximum=86_400)),
    )
    kafka, catalog = _connect(settings, "sync marketplaces")
    pushers = stock_pushers(catalog)
    service = SyncService(kafka, catalog, pushers, options)
    for name in service.lanes:
        click.echo(f"  {name}: pushing")
    for name, why in service.disabled.items():
        click.echo(f"  {name}: off ({why})")
    if not service.lanes:
        logging.getLogger(__name__).warning("no channel can be pushed; sync only reports")

    async def main(stop: asyncio.Event) -> None:
        click.echo(f"sync running (status on http://{host}:{port_number}/status)" if port_number else "sync running")
        await service.run(stop, host=host, port=port_number)

    _run_until_signal(main)
