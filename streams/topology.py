"""The lock engine's topology as data: for each agent its input topics, the table it owns and
what it writes (under which key, and when); for the timer the table it scans and what it writes.

Faust spreads a pipeline over decorators; Kafka Streams declares it in one place. This module is
that place: ``validate`` checks it against the topic registry (lockstock/topics.py),
``streams.topology_render`` draws it, and docs/topology.md and the README's diagram are generated
from it (tests/unit/test_topology.py pins all three), so no hand-drawn diagram can drift again.

Pure data, no Faust: the docs, the tests and the CLI read it without building an app.
``python -m streams.topology`` prints docs/topology.md; ``--readme`` prints the README block.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Iterable, Mapping

from lockstock import topics
from lockstock.topics import TopicSpec, changelog_topic


@dataclass(frozen=True)
class Table:
    name: str  # the Faust table name
    key: str
    partitioned_like: TopicSpec  # the input topic whose partitions the table's follow
    holds: str

    def changelog(self, app_id: str) -> str:
        return changelog_topic(app_id, self.name)


@dataclass(frozen=True)
class Output:
    topic: TopicSpec
    when: str
    # An answer others act on: sent only once the batch's changelog is acknowledged
    # (streams/transaction.py, step 6), so no answer of a batch a kill lost is ever out to be
    # contradicted. Otherwise an effect, sent before the changelog.
    after_changelog: bool = False

    @property
    def key(self) -> str:
        return self.topic.key  # the registry names each topic's key once; the topology follows it


@dataclass(frozen=True)
class Agent:
    name: str
    does: str
    inputs: tuple[TopicSpec, ...]
    table: Table
    outputs: tuple[Output, ...]

    @property
    def output_topics(self) -> tuple[TopicSpec, ...]:
        return tuple(output.topic for output in self.outputs)

    @property
    def answers(self) -> frozenset[TopicSpec]:
        """The topics of the outputs sent after the batch's changelog (``Output.after_changelog``)."""
        return frozenset(output.topic for output in self.outputs if output.after_changelog)


@dataclass(frozen=True)
class Timer:
    name: str
    does: str
    every: str
    scans: Table  # read only: the agent that owns it is its only writer
    outputs: tuple[Output, ...]

    @property
    def output_topics(self) -> tuple[TopicSpec, ...]:
        return tuple(output.topic for output in self.outputs)


Node = Agent | Timer


@dataclass(frozen=True)
class Topology:
    agents: tuple[Agent, ...]
    timers: tuple[Timer, ...]

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self.agents + self.timers

    def agent(self, name: str) -> Agent:
        return _named(self.agents, name)

    def timer(self, name: str) -> Timer:
        return _named(self.timers, name)

    def topics(self) -> tuple[TopicSpec, ...]:
        """Every topic the engine touches, in the order the nodes first name them."""
        named = [spec for agent in self.agents for spec in agent.inputs]
        named += [spec for node in self.nodes for spec in node.output_topics]
        return tuple(dict.fromkeys(named))

    def readers_of(self, spec: TopicSpec) -> tuple[str, ...]:
        return tuple(agent.name for agent in self.agents if spec in agent.inputs)

    def writers_of(self, spec: TopicSpec) -> tuple[str, ...]:
        return tuple(node.name for node in self.nodes if spec in node.output_topics)

    def owner_of(self, table: Table) -> Agent:
        return next(agent for agent in self.agents if agent.table == table)


def _named(nodes: tuple[Node, ...], name: str) -> Node:
    for node in nodes:
        if node.name == name:
            return node
    raise KeyError(f"no {name!r} in the topology (known: {', '.join(n.name for n in nodes)})")


ORDERS_TABLE = Table(
    "orders", "order_id", topics.ORDERS_PLACED,
    "each order's line outcomes, decision and lifecycle status, and its dedup record",
)
STOCK_TABLE = Table(
    "stock", "sku", topics.LOCK_REQUESTS,
    "each SKU's allocations, flex pool, reservations, limits, alert state and audit chain head",
)

ORDER_DESK = Agent(
    name="order_desk",
    does="splits an order into per-SKU lock requests, gathers the answers into one "
         "all-or-nothing decision, and drives the order's lifecycle",
    inputs=(topics.ORDERS_PLACED, topics.LOCK_RESULTS, topics.ORDERS_EVENTS, topics.ORDER_TIMERS),
    table=ORDERS_TABLE,
    outputs=(
        Output(topics.LOCK_REQUESTS,
               "LOCK each SKU of a new order; RELEASE to compensate when another line is rejected, "
               "on cancel and on payment timeout; COMMIT when paid; SHIP when shipped"),
        Output(topics.ORDERS_DECISIONS,
               "REJECTED at once for a malformed order; LOCKED or REJECTED when every SKU has "
               "answered (multi-SKU orders); RELEASED on cancel or payment timeout; the latest "
               "decision again for an input it already applied (a duplicate order, a redelivered "
               "answer, cancel or timer); once the batch's changelog is acknowledged",
               after_changelog=True),
        Output(topics.DEADLETTER,
               "an input that does not decode or is not its topic's record; a lifecycle event "
               "that cannot apply; an event whose handling failed"),
    ),
)

LOCK_STOCK_LINES = Agent(
    name="lock_stock_lines",
    does="applies each SKU's lock, release, commit and ship requests and operator commands to "
         "its stock, and runs the automation (flex, limits, replenishment, reallocation)",
    inputs=(topics.LOCK_REQUESTS, topics.INVENTORY_COMMANDS),
    table=STOCK_TABLE,
    outputs=(
        Output(topics.LOCK_RESULTS, "the answer (LOCKED or REJECTED) to every LOCK request, once the "
               "batch's changelog is acknowledged", after_changelog=True),
        Output(topics.ORDERS_DECISIONS,
               "a single-SKU order's decision, from its one answer (two hops, not three), once the "
               "batch's changelog is acknowledged; a replayed answer announces nothing, the desk does",
               after_changelog=True),
        Output(topics.INVENTORY_ALERTS,
               "each automatic move and threshold crossing; purchase limits and pauses set by "
               "an operator"),
        Output(topics.CHANNELS_STOCK,
               "per channel, what it may sell of each SKU the batch changed, as of the batch's end"),
        Output(topics.INVENTORY_AUDIT, "one hash-chain link per change to a SKU's counts"),
        Output(topics.DEADLETTER,
               "an input that does not decode or is not its topic's record; an operator command "
               "that cannot apply; an event whose handling failed"),
    ),
)

SWEEP_ORDERS = Timer(
    name="sweep_orders",
    does="finds the orders whose deadline passed and asks the desk to act (the desk re-checks)",
    every="catalog rules.sweep_interval_s",
    scans=ORDERS_TABLE,
    outputs=(
        Output(topics.ORDER_TIMERS,
               "EXPIRE for an unpaid lock past its channel's TTL; FORGET for a finished order "
               "past rules.order_retention_s"),
    ),
)

TOPOLOGY = Topology(agents=(ORDER_DESK, LOCK_STOCK_LINES), timers=(SWEEP_ORDERS,))


def validate(topology: Topology, registry: Iterable[TopicSpec] = topics.ALL,
             tables: Mapping[str, TopicSpec] = topics.TABLES) -> list[str]:
    """What is wrong with ``topology`` against the topic registry and its table map; empty when
    nothing is. Every problem is listed, not just the first, so one run shows them all."""
    by_suffix = {spec.suffix: spec for spec in registry}
    problems = []
    names = [node.name for node in topology.nodes]
    problems += [f"{name}: named twice" for name in sorted({n for n in names if names.count(n) > 1})]

    for spec in topology.topics():
        if by_suffix.get(spec.suffix) != spec:
            problems.append(f"{spec.suffix}: not the registry's topic of that name")
    # The registry lists what lockstock reads or writes, and the engine is where every topic
    # meets: a registered topic no node touches is a wire nobody connected.
    problems += [f"{suffix}: registered, but no node reads or writes it"
                 for suffix, spec in by_suffix.items() if spec not in topology.topics()]

    for agent in topology.agents:
        problems += _agent_problems(topology, agent, tables)
    for timer in topology.timers:
        problems += _timer_problems(topology, timer)

    # An internal topic is a private hop between two nodes: one writer, so its order per key is
    # that writer's order, and at least one reader, or the hop leads nowhere.
    for spec in topology.topics():
        if spec.internal:
            writers, readers = topology.writers_of(spec), topology.readers_of(spec)
            if len(writers) != 1:
                problems.append(f"{spec.suffix}: internal, written by {list(writers)}; needs exactly one writer")
            if not readers:
                problems.append(f"{spec.suffix}: internal, but no agent reads it")
    return problems


def _agent_problems(topology: Topology, agent: Agent, tables: Mapping[str, TopicSpec]) -> list[str]:
    table, problems = agent.table, []
    if not agent.inputs or not agent.outputs:
        problems.append(f"{agent.name}: needs inputs and outputs")
    if tables.get(table.name) != table.partitioned_like:
        problems.append(f"{agent.name}: table {table.name} is not in lockstock.topics.TABLES "
                        f"partitioned like {table.partitioned_like.suffix}")
    if table.partitioned_like not in agent.inputs:
        problems.append(f"{agent.name}: table {table.name} follows {table.partitioned_like.suffix}, not an input")
    # Co-partitioning: an event's key must be its table's key, so the state it touches lives on
    # the event's own partition, in this worker's store.
    problems += [f"{agent.name}: input {spec.suffix} keyed by {spec.key}, its table by {table.key}"
                 for spec in agent.inputs if spec.key != table.key]
    owners = [a.name for a in topology.agents if a.table.name == table.name]
    if owners != [agent.name]:
        problems.append(f"table {table.name}: owned by {owners}; needs exactly one agent")
    return problems


def _timer_problems(topology: Topology, timer: Timer) -> list[str]:
    owners = [agent for agent in topology.agents if agent.table == timer.scans]
    if not owners:
        return [f"{timer.name}: scans table {timer.scans.name}, which no agent owns"]
    # Only the owner writes its table: a timer asks it to, through a topic the owner reads.
    return [f"{timer.name}: writes {output.topic.suffix}, which {owners[0].name} (its table's owner) does not read"
            for output in timer.outputs if output.topic not in owners[0].inputs]


def main(argv: list[str]) -> int:
    from streams import topology_render

    if argv not in ([], ["--readme"]):
        print("usage: python -m streams.topology [--readme]", file=sys.stderr)
        return 2
    problems = validate(TOPOLOGY)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print(topology_render.readme_section(TOPOLOGY) if argv else topology_render.document(TOPOLOGY), end="")
    return 0


if __name__ == "__main__":
    # Run the imported module's main, not this copy's: runpy executes this file as a second
    # module whose classes the renderer's isinstance checks would not recognise.
    from streams.topology import main as imported_main

    sys.exit(imported_main(sys.argv[1:]))
