"""`lockstock loadtest`: play N channels ordering at once against a running lockstock and report
what a seller needs before going live: offered vs achieved rate, order->decision latency
percentiles, decisions by status and reason, oversold units recomputed from the decision stream,
and orders left without a decision.

Without KAFKA_BOOTSTRAP_SERVERS it starts the embedded broker and a worker for the run. The run's
SKUs, orders and buyers carry a run id, so it never touches real stock.

``--chaos`` starts its own workers (two by default) and SIGKILLs them at random points while the
orders flow, restarts them, and crashes the order producer once; it passes only with every order
decided exactly one way, nothing oversold and the engine's state equal to the decisions. On a real
cluster it runs under its own app id and topic prefix, never in the production group.

``--hot-sku`` turns a share of the orders into a flash sale on one SKU of its own. A worker that
dies during any run fails it, named with its last log lines (apps.load.deaths says how each
kind of worker is watched)."""

from __future__ import annotations

import json
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from apps.cli import cli
from apps.cli.options import echo_table, settings_options
from apps.load.brokerchaos import own_cluster
from apps.load.chaos import ChaosRun
from apps.load.deaths import PoolWatch, Watch, Watchdog, death_lines, external_watches
from apps.load.profile import DEFAULT_CHANNELS, SHAPES, LoadProfile
from apps.load.run import LoadRun
from apps.load.webhooks import AUTO_SHARE_ON_OWN_CLUSTER
from apps.supervise import WorkerPool
from lockstock.errors import SettingsError
from lockstock.kafka import kafka_for
from lockstock.settings import Settings, parse_int


def _number(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {value!r}") from None


@cli.command()
@settings_options
@click.option("--rate", default="500", show_default=True, help="Orders/s offered in total (the peak for ramp; spike: 1/4 of it, 3x in the middle 10 %).")
@click.option("--duration", default="30", show_default=True, help="Seconds of traffic.")
@click.option("--shape", default="sustained", show_default=True, type=click.Choice(SHAPES), help="How the rate moves over the run.")
@click.option("--channels", default=",".join(DEFAULT_CHANNELS), show_default=True, help="Channels ordering at once (catalog ids, comma-separated).")
@click.option("--skus", default="20", show_default=True, help="SKUs in play (created for the run).")
@click.option("--stock-per-sku", default="1000", show_default=True, help="Units set per SKU before the run.")
@click.option("--zipf", default="1.1", show_default=True, help="SKU popularity skew (Zipf exponent; 0 = uniform).")
@click.option("--multi-line", default="0.1", show_default=True, help="Share of orders with 2-3 SKUs (0-1).")
@click.option("--duplicates", default="0.02", show_default=True, help="Share of orders delivered twice (0-1).")
@click.option("--cancellations", default="0.05", show_default=True, help="Share of locked orders cancelled (0-1).")
@click.option("--buyers", default="5000", show_default=True, help="Distinct buyers (fewer: more repeat buyers, purchase limits).")
@click.option("--max-qty", default="2", show_default=True, help="Units per line, 1 to this.")
@click.option("--hot-sku", default="0", show_default=True, help="Share of orders (0-1) that buy one unit of one hot SKU of the run's own, each from a new buyer: a flash sale. 1 = every order.")
@click.option("--hot-stock", default="auto", show_default=True, help="Units on the hot SKU (whole number); auto: enough for every hot order the run offers to lock.")
@click.option("--seed", default="7", show_default=True, help="Random seed (the same seed plays the same orders).")
@click.option("--settle", default="60", show_default=True, help="Seconds to wait for the last decisions after the traffic.")
@click.option("--chaos", is_flag=True, help="SIGKILL and restart workers mid-run and crash the producer once; check nothing is lost, doubled or oversold.")
@click.option("--workers", default="2", show_default=True, help="Workers --chaos starts and kills (1-8).")
@click.option("--kills", default="3", show_default=True, help="Worker SIGKILLs spread over a --chaos run (0-100).")
@click.option("--apache-nodes", default=None, metavar="N",
              help="With --chaos: start an Apache Kafka cluster of N nodes (1 or 3; 3: replication factor 3, min.insync.replicas 2) for the run and stop it after. Needs Java 17; KAFKA_BOOTSTRAP_SERVERS unset.")
@click.option("--broker-kills", default="0", show_default=True,
              help="With --apache-nodes 3: SIGKILL the leader of an orders.placed partition this many times mid-burst (0-5), each restarted seconds later; worker kills follow once the cluster is whole.")
@click.option("--webhooks", default="auto", show_default=True,
              help="With --chaos: share of the orders (0-1) sent as signed Shopify webhooks through a gateway the run starts; auto: 0.15 with --apache-nodes, else 0.")
@click.option("--worker-url", envvar="LOCKSTOCK_WORKER_URL",
              help="A running worker's web address, watched so that its death fails the run [env LOCKSTOCK_WORKER_URL; default from --web-port 6066, if one answers there].")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the report as JSON to this file.")
def loadtest(settings: Settings, rate: str, duration: str, shape: str, channels: str, skus: str, stock_per_sku: str,
             zipf: str, multi_line: str, duplicates: str, cancellations: str, buyers: str, max_qty: str, hot_sku: str,
             hot_stock: str, seed: str, settle: str, chaos: bool, workers: str, kills: str, apache_nodes: str | None,
             broker_kills: str, webhooks: str, worker_url: str | None, json_path: Path | None) -> None:
    """Load-test a running lockstock before going live (four platforms ordering at once by default).

    A flash sale on one SKU, every order one unit from a new buyer, nothing cancelled or sent
    twice (the hot SKU gets enough units for all of them):

    \b
      lockstock loadtest --hot-sku 1 --rate 400 --duration 40 --cancellations 0 --duplicates 0

    The run fails (exit 1) on an oversold unit, an undecided or flipped order, or a worker that
    dies during it; a dead worker is named with the last 40 lines of its log. Workers the run
    starts are watched as processes; a worker you run is watched at --worker-url (its /ready/
    view) and, on a broker that reports them, by the members of its consumer group."""
    profile = LoadProfile(
        rate=_number(rate, "--rate"), duration_s=_number(duration, "--duration"), shape=shape,
        channels=tuple(c.strip() for c in channels.split(",") if c.strip()), skus=_number(skus, "--skus"),
        stock_per_sku=_number(stock_per_sku, "--stock-per-sku"), zipf_s=_number(zipf, "--zipf"),
        multi_line=_number(multi_line, "--multi-line"), duplicates=_number(duplicates, "--duplicates"),
        cancellations=_number(cancellations, "--cancellations"), buyers=_number(buyers, "--buyers"),
        max_qty=_number(max_qty, "--max-qty"), seed=_number(seed, "--seed"), hot_sku=_number(hot_sku, "--hot-sku"),
        hot_stock=None if hot_stock.strip().lower() == "auto" else _number(hot_stock, "--hot-stock"),
    ).validate()
    settle_s = _number(settle, "--settle")
    if not 1 <= settle_s <= 3600:
        raise SettingsError(f"--settle must be between 1 and 3600, got {settle}")
    catalog = settings.catalog()
    unknown = [c for c in profile.channels if c not in catalog.channels]
    if unknown:
        raise SettingsError(f"--channels: {', '.join(unknown)} not in the catalog ({', '.join(catalog.channels)})")
    worker_count = parse_int(workers, "--workers", minimum=1, maximum=8)
    kill_count = parse_int(kills, "--kills", minimum=0, maximum=100)
    cluster = cluster_choice(settings, chaos, apache_nodes, broker_kills, webhooks)
    if chaos:
        report = _chaos(settings, profile, settle_s, worker_count, kill_count, cluster)
    else:
        report = _load(settings, profile, settle_s, worker_url)
    _print(report)
    if json_path:
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        click.echo(f"report written to {json_path}")
    failed = report["oversold"] or report["undecided"] or report["flipped"] or report["workers_died"] or \
        (report.get("chaos") or {}).get("state_mismatches") or _webhooks_failed(report)
    if failed:
        raise SystemExit(1)


def _load(settings: Settings, profile: LoadProfile, settle_s: float, worker_url: str | None) -> dict[str, Any]:
    with kafka_for(settings) as kafka:
        kafka.create_topics()
        # Under the data directory the user chose: the embedded broker's run directory is deleted after it.
        pool = WorkerPool(kafka.settings, settings.data_dir / "loadtest-logs" / time.strftime("%Y%m%d-%H%M%S")) \
            if settings.embedded else None
        try:
            if pool is not None:
                worker = pool.start()
                click.echo(f"starting a worker on the embedded broker (pid {worker.pid}, log {worker.log_path}) ...")
                worker.wait_ready()
                watches: list[Watch] = [PoolWatch(pool)]
            else:
                default_url = f"http://{settings.web_host}:{settings.web_port}"
                watches = external_watches(kafka, worker_url, default_url, say=click.echo)
            with Watchdog(watches) as watchdog:
                return LoadRun(kafka, profile, settle_s, watchdog=watchdog).run()
        finally:
            if pool is not None:
                pool.stop_all()


@dataclass(frozen=True)
class ClusterChoice:
    nodes: int | None  # an Apache Kafka cluster the run starts itself; None: the configured broker
    broker_kills: int
    webhook_share: float


def cluster_choice(settings: Settings, chaos: bool, apache_nodes: str | None, broker_kills: str,
                   webhooks: str) -> ClusterChoice:
    """The cluster, broker-kill and webhook options, checked together before anything starts."""
    kills = parse_int(broker_kills, "--broker-kills", minimum=0, maximum=5)
    nodes = None if apache_nodes is None else parse_int(apache_nodes, "--apache-nodes", minimum=1, maximum=3)
    auto = webhooks.strip().lower() == "auto"
    share = (AUTO_SHARE_ON_OWN_CLUSTER if nodes else 0.0) if auto else _number(webhooks, "--webhooks")
    if not 0 <= share <= 1:
        raise SettingsError(f"--webhooks must be a share between 0 and 1, got {webhooks}")
    if not chaos:
        given = [name for name, on in (("--apache-nodes", nodes is not None), ("--broker-kills", kills),
                                       ("--webhooks", not auto and share)) if on]
        if given:
            raise SettingsError(f"{', '.join(given)} apply to a chaos run: add --chaos")
    if nodes == 2:
        raise SettingsError("--apache-nodes must be 1 or 3, got 2")
    if kills and nodes is None:
        raise SettingsError("--broker-kills needs --apache-nodes 3: lockstock SIGKILLs only brokers the run "
                            "started itself, never a cluster someone else runs")
    if kills and nodes == 1:
        raise SettingsError("--broker-kills needs --apache-nodes 3: killing the only node stops every write")
    if nodes is not None and not settings.embedded:
        raise SettingsError(f"--apache-nodes starts a cluster of the run's own, but KAFKA_BOOTSTRAP_SERVERS is set "
                            f"({settings.bootstrap_servers}): unset it, or drop --apache-nodes to run on that cluster")
    return ClusterChoice(nodes, kills, share)


def _chaos(settings: Settings, profile: LoadProfile, settle_s: float, workers: int, kills: int,
           choice: ClusterChoice) -> dict[str, Any]:
    # Under the data directory the user chose, not the run's state directory (the embedded
    # broker's runs delete theirs): a failed chaos run is read from its workers' logs.
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_dir = (settings.data_dir / "chaos-logs" / stamp).resolve()
    if choice.nodes is None:
        return _chaos_on(settings, profile, settle_s, workers, kills, choice, log_dir)
    signal.signal(signal.SIGTERM, _interrupt)  # a SIGTERM unwinds like Ctrl-C: the cluster is stopped
    work_dir = (settings.data_dir / "chaos-cluster" / stamp).resolve()
    with own_cluster(choice.nodes, work_dir, log_dir / "kafka", progress=click.echo) as cluster:
        settings = settings.with_(bootstrap_servers=cluster.bootstrap, replication_factor=choice.nodes)
        return _chaos_on(settings, profile, settle_s, workers, kills, choice, log_dir, cluster)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _chaos_on(settings: Settings, profile: LoadProfile, settle_s: float, workers: int, kills: int,
              choice: ClusterChoice, log_dir: Path, cluster: Any = None) -> dict[str, Any]:
    if not settings.embedded:
        # Its own group and topics: killing workers must never touch the production group.
        run = uuid.uuid4().hex[:8]
        settings = settings.with_(app_id=f"lockstock-chaos-{run}", topic_prefix=f"lockstock-chaos-{run}")
        click.echo(f"chaos on {settings.bootstrap_servers}: app id and topic prefix {settings.app_id}")
    with kafka_for(settings) as kafka:
        kafka.create_topics()
        click.echo(f"starting {workers} worker(s) for the chaos run (logs in {log_dir}) ...")
        return ChaosRun(kafka, profile, settle_s, workers, kills, profile.seed, log_dir, progress=click.echo,
                        cluster=cluster, broker_kills=choice.broker_kills, webhook_share=choice.webhook_share).run()


def _webhooks_failed(report: dict[str, Any]) -> bool:
    hooks = report.get("webhooks")
    return "webhooks" in report and (hooks is None or bool(hooks["missing"] or hooks["refused"]))


def _print(report: dict[str, Any]) -> None:
    click.echo("")
    rows = [{"measure": k, "value": report[k]} for k in
            ("orders", "offered_per_s", "achieved_per_s", "decided", "undecided", "flipped", "held_units", "oversold")]
    if report.get("hot_sku"):
        rows.append({"measure": "hot SKU (units)", "value": f"{report['hot_sku']['sku']} ({report['hot_sku']['stock']})"})
    rows += [{"measure": f"latency {k}", "value": v} for k, v in report["latency"].items()]
    rows += [{"measure": f"final {k}", "value": v} for k, v in sorted(report["final_status"].items())]
    rows += [{"measure": f"reason {k}", "value": v} for k, v in sorted(report["reasons"].items())]
    chaos = report.get("chaos")
    if chaos:
        actions = [e["action"] for e in chaos["events"]]
        rows += [{"measure": "chaos workers", "value": chaos["workers"]},
                 {"measure": "chaos kills / restarts", "value": f"{actions.count('kill')} / {actions.count('restart')}"},
                 {"measure": "chaos producer crashes (re-sent)", "value": f"{actions.count('producer-restart')} ({chaos['producer_resent']})"},
                 {"measure": "engine state vs decisions", "value": _state_verdict(chaos["state_mismatches"])}]
        brokers = [e["action"] for e in chaos.get("broker_events") or []]
        if chaos.get("cluster"):
            isr = sorted(set(chaos["cluster"]["min_insync_replicas"].values()))
            rows += [{"measure": "cluster nodes / replication / min ISR",
                      "value": f"{chaos['cluster']['nodes']} / {chaos['cluster']['replication_factor']} / {isr}"},
                     {"measure": "broker kills / restarts / rejoined",
                      "value": f"{brokers.count('broker-kill')} / {brokers.count('broker-restart')} / {brokers.count('broker-rejoined')}"}]
    if "webhooks" in report:
        hooks = report["webhooks"]
        rows.append({"measure": "webhooks 2xx / 503 retried / missing",
                     "value": "not checked (a worker died)" if hooks is None else
                     f"{hooks['answered_2xx']} / {hooks['retried_503']} / {hooks['missing']}"})
    died = report["workers_died"]
    rows.append({"measure": "workers died", "value": len(died) or "none"})
    rows += [{"measure": f"  died: {d['worker']}", "value": d["how"]} for d in died]
    if report["stopped_early"]:
        rows.append({"measure": "stopped early", "value": "yes: a worker died"})
    echo_table(rows, ["measure", "value"])
    for line in death_lines(died):
        click.echo(line)


def _state_verdict(mismatches: list | None) -> str:
    if mismatches is None:
        return "not compared (a worker died)"
    return f"{len(mismatches)} SKU(s) differ" if mismatches else "agrees"
