"""`lockstock up`: the whole stack on one command, with the war room to watch it.

Starts the embedded broker (unless KAFKA_BOOTSTRAP_SERVERS is set), creates the topics, starts
the lock-engine worker(s) as child processes (each on its own free web port and state directory)
and serves the war room (default http://127.0.0.1:6066/). It prints the bootstrap address, so a
load test in another terminal is watched live, and runs until Ctrl-C or SIGTERM, then stops what
it started, by PID. ``--demo`` also plays the BreezeStyle live stream into it.
"""

from __future__ import annotations

import random
import signal
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import click

from apps.cli import cli
from apps.cli.demo import StreamRun, print_summary, write_demo_catalog
from apps.cli.options import settings_options
from apps.client import LockstockClient
from apps.supervise import WorkerPool, WorkerProcess
from apps.warroom.service import WarRoomService
from lockstock.broker.embedded import free_port, port_in_use
from lockstock.catalog import Catalog
from lockstock.errors import LockstockError, SettingsError
from lockstock.kafka import Kafka, kafka_for
from lockstock.settings import ENV, Settings, parse_int, parse_port

DEMO_ORDERS = 2400
DEMO_SECONDS = 120  # slower than `lockstock demo` (60 s): people are watching
DEMO_STOP_TIMEOUT_S = 15.0
SUPERVISE_EVERY_S = 0.5


@cli.command()
@settings_options
@click.option("--web-port", help="War room port [env LOCKSTOCK_WEB_PORT, default 6066].")
@click.option("--workers", default="1", show_default=True, help="Lock-engine workers to start (1-8).")
@click.option("--demo", is_flag=True, help="Also play the BreezeStyle live stream into it (3 SKUs, 9 channels).")
@click.option("--demo-seconds", default=str(DEMO_SECONDS), show_default=True,
              help="Real seconds the demo's 90-minute stream takes (10-3600).")
def up(settings: Settings, web_port: str | None, workers: str, demo: bool, demo_seconds: str) -> None:
    """Broker, topics, worker(s) and the war room, until Ctrl-C."""
    port = parse_port(web_port if web_port is not None else settings.web_port, "--web-port")
    worker_count = parse_int(workers, "--workers", minimum=1, maximum=8)
    seconds = parse_int(demo_seconds, "--demo-seconds", minimum=10, maximum=3600)
    if port_in_use(settings.web_host, port):
        raise SettingsError(f"port {port} on {settings.web_host} is taken (another `lockstock up` or a worker?); "
                            "choose one with --web-port")
    if demo and settings.channels_file is not None:
        raise SettingsError("--demo plays with its own catalog (the BreezeStyle channels, clocks compressed); "
                            "drop --channels-file / LOCKSTOCK_CHANNELS_FILE")
    if demo and not settings.embedded:
        # Never play invented orders into a real cluster's production topics or group.
        tag = uuid.uuid4().hex[:8]
        settings = settings.with_(topic_prefix=f"{settings.topic_prefix}-demo-{tag}", app_id=f"lockstock-demo-{tag}")
    _interrupt_on_signals()
    with tempfile.TemporaryDirectory(prefix="lockstock-up-") as scratch, kafka_for(settings) as kafka:
        catalog_file, catalog = settings.channels_file, settings.catalog()
        # Workers keep their state stores in the data dir (kafka_for makes it a throwaway one for
        # the embedded broker); a demo's topics are new each run, so its state is throwaway too.
        state_dir = kafka.settings.data_dir
        if demo:
            catalog_file, catalog = write_demo_catalog(catalog, seconds, Path(scratch))
            state_dir = Path(scratch) / "state"
        kafka.create_topics()
        stack = Stack(kafka, catalog, kafka.settings.with_(channels_file=catalog_file, data_dir=state_dir), Path(scratch))
        stack.run(port, worker_count, seconds if demo else None)


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM interrupt `up` wherever it is, and the cleanup stops what it started.
    SIGINT is set explicitly: a shell starts background jobs with it ignored, and Ctrl-C reaches
    the workers too, so `up` must know it is stopping before they exit, not take their exit for
    a crash."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, interrupt)


def _ignore_signals() -> None:
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, signal.SIG_IGN)


class Stack:
    """Workers, war room and (optionally) the demo stream, supervised until asked to stop."""

    def __init__(self, kafka: Kafka, catalog: Catalog, worker_settings: Settings, scratch: Path) -> None:
        self.kafka, self.catalog = kafka, catalog
        self.stopping = threading.Event()  # tells the demo player to finish
        self.log_dir = scratch / "logs"
        self.state_dir = worker_settings.data_dir
        self.pool = WorkerPool(worker_settings, self.log_dir)

    def run(self, port: int, workers: int, demo_seconds: int | None) -> None:
        room = None
        player: threading.Thread | None = None
        try:
            room = WarRoomService(self.kafka, self.catalog, self.kafka.settings.web_host, port).start()
            for index in range(workers):
                self.pool.start(data_dir=self.state_dir / f"worker-{index}", web_port=free_port())
            self._announce(room)
            for worker in self.pool.started:
                click.echo(f"worker pid {worker.process.pid} ready in {_wait_ready(worker):.1f}s ({worker.url})")
            if demo_seconds is not None:
                player = self._play_demo(self.pool.started[0], demo_seconds)
            click.echo("Ctrl-C to stop.")
            self._supervise()
        except KeyboardInterrupt:
            pass
        finally:
            _ignore_signals()  # a second Ctrl-C must not cut the (bounded) cleanup short
            self.stopping.set()
            if player is not None:
                player.join(DEMO_STOP_TIMEOUT_S)
            if room is not None:
                room.stop()
            self.pool.stop_all()
            click.echo("stopped.")

    def _announce(self, room: WarRoomService) -> None:
        settings = self.kafka.settings
        click.echo(f"war room   {room.url}")
        click.echo(f"broker     {self.kafka.bootstrap} ({self.kafka.profile.name} profile); topics {settings.topic_prefix}.*")
        click.echo(f"worker logs {self.log_dir}")
        click.echo("watch a load test live from another terminal:")
        click.echo(f"  {_env_for_others(settings)} lockstock loadtest --rate 200 --duration 60")

    def _play_demo(self, worker: WorkerProcess, seconds: int) -> threading.Thread:
        def play() -> None:
            try:
                run = StreamRun(LockstockClient(self.kafka), self.catalog, worker, DEMO_ORDERS, seconds,
                                random.Random(7), stopping=self.stopping)
                summary = run.run()
                if not self.stopping.is_set():
                    print_summary(summary)
                    click.echo("\nthe stream is over; the war room stays up until Ctrl-C.")
            except (LockstockError, OSError, AssertionError) as exc:
                if not self.stopping.is_set():
                    click.echo(f"demo stream stopped: {exc}", err=True)

        click.echo(f"playing the BreezeStyle stream: 90 minutes in {seconds} s\n")
        player = threading.Thread(target=play, name="lockstock-up-demo", daemon=True)
        player.start()
        return player

    def _supervise(self) -> None:
        """Wait for Ctrl-C / SIGTERM; a worker that exits on its own ends `up` with its log."""
        while not self.stopping.wait(SUPERVISE_EVERY_S):
            for index, worker in enumerate(self.pool.started):
                code = worker.process.poll() if worker.process else None
                if code is not None:
                    raise LockstockError(f"worker {index} (pid {worker.process.pid}) exited with code {code}; "
                                         f"log tail:\n{worker.log_tail(15)}")


def _wait_ready(worker: WorkerProcess) -> float:
    try:
        return worker.wait_ready()
    except AssertionError as exc:  # supervise reports a worker that never came up this way
        raise LockstockError(str(exc)) from None


def _env_for_others(settings: Settings) -> str:
    """The environment another lockstock command needs to join this stack."""
    env: dict[str, Any] = {ENV["bootstrap_servers"]: settings.bootstrap_servers}
    defaults = Settings()
    for name in ("topic_prefix", "partitions", "schema_registry_url"):
        if getattr(settings, name) != getattr(defaults, name):
            env[ENV[name]] = getattr(settings, name)
    if settings.channels_file is not None:  # orders must name channels the workers know
        env[ENV["channels_file"]] = settings.channels_file
    return " ".join(f"{k}={v}" for k, v in env.items())
