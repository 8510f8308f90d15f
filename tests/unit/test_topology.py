"""streams/topology.py holds against the topic registry, and docs/topology.md and the README's
diagram are exactly what it generates (regenerate with ``python -m streams.topology``)."""

import re
from dataclasses import replace
from pathlib import Path

import pytest

from lockstock import topics
from streams.topology import (
    LOCK_STOCK_LINES, ORDER_DESK, SWEEP_ORDERS, TOPOLOGY, Output, Topology, main, validate,
)
from streams.topology_render import README_BEGIN, README_END, between_markers, document, mermaid, readme_block

ROOT = Path(__file__).parents[2]


def test_the_topology_holds_against_the_registry():
    assert validate(TOPOLOGY) == []


def test_accessors_name_the_registry_specs():
    assert TOPOLOGY.agent("order_desk").inputs == (
        topics.ORDERS_PLACED, topics.LOCK_RESULTS, topics.ORDERS_EVENTS, topics.ORDER_TIMERS)
    assert TOPOLOGY.agent("lock_stock_lines").inputs == (topics.LOCK_REQUESTS, topics.INVENTORY_COMMANDS)
    assert TOPOLOGY.timer("sweep_orders").output_topics == (topics.ORDER_TIMERS,)
    assert TOPOLOGY.writers_of(topics.ORDERS_DECISIONS) == ("order_desk", "lock_stock_lines")
    assert TOPOLOGY.writers_of(topics.DEADLETTER) == ("order_desk", "lock_stock_lines")
    assert TOPOLOGY.readers_of(topics.LOCK_REQUESTS) == ("lock_stock_lines",)
    assert TOPOLOGY.owner_of(SWEEP_ORDERS.scans) is ORDER_DESK
    with pytest.raises(KeyError, match="sweep_orders"):
        TOPOLOGY.agent("sweep_orders")  # a timer, not an agent


def test_tables_and_their_changelogs_are_the_registry_ones():
    declared = {agent.table.name: agent.table for agent in TOPOLOGY.agents}
    assert {name: table.partitioned_like for name, table in declared.items()} == topics.TABLES
    assert {t.changelog("lockstock") for t in declared.values()} == set(topics.changelog_topics("lockstock"))


def _with(agent, **changes) -> Topology:
    agents = tuple(replace(a, **changes) if a is agent else a for a in TOPOLOGY.agents)
    return replace(TOPOLOGY, agents=agents)


def test_validate_names_each_broken_invariant():
    stray = replace(topics.DEADLETTER, suffix="dead.letters")
    assert any("dead.letters: not the registry's" in p
               for p in validate(_with(ORDER_DESK, outputs=ORDER_DESK.outputs + (Output(stray, "x"),))))

    second_writer = _with(ORDER_DESK, outputs=ORDER_DESK.outputs + (Output(topics.LOCK_RESULTS, "x"),))
    assert any("lock.results: internal, written by ['order_desk', 'lock_stock_lines']" in p
               for p in validate(second_writer))

    mis_keyed = _with(LOCK_STOCK_LINES, inputs=LOCK_STOCK_LINES.inputs + (topics.ORDERS_EVENTS,))
    assert "lock_stock_lines: input orders.events keyed by order_id, its table by sku" in validate(mis_keyed)

    no_commands = _with(LOCK_STOCK_LINES, inputs=(topics.LOCK_REQUESTS,))
    assert "inventory.commands: registered, but no node reads or writes it" in validate(no_commands)

    stray_timer = replace(SWEEP_ORDERS, outputs=(Output(topics.LOCK_REQUESTS, "x"),))
    problems = validate(replace(TOPOLOGY, timers=(stray_timer,)))
    assert any("sweep_orders: writes lock.requests, which order_desk" in p for p in problems)
    assert "order.timers: internal, written by []; needs exactly one writer" in problems


def test_the_diagram_declares_every_node_it_links():
    text = mermaid(TOPOLOGY)
    declared = set(re.findall(r"^    (\w+)[\[\(\{]", text, re.M))
    linked = set(re.findall(r"^    (\w+) -", text, re.M)) | set(re.findall(r"(?:-->|-\.->|---)(?:\|[^|]*\|)? (\w+)$", text, re.M))
    assert linked and linked <= declared


def test_docs_topology_md_is_generated_from_the_topology():
    doc = ROOT / "docs" / "topology.md"
    assert doc.read_text() == document(TOPOLOGY), "run: python -m streams.topology > docs/topology.md"


def test_readme_diagram_is_generated_from_the_topology():
    readme = (ROOT / "README.md").read_text()
    block = between_markers(readme)
    assert block is not None, f"README.md lacks {README_BEGIN} ... {README_END}: paste `python -m streams.topology --readme`"
    assert block == readme_block(TOPOLOGY), "run: python -m streams.topology --readme, and paste it over the README's block"


def test_the_module_prints_the_document(capsys):
    assert main([]) == 0
    assert capsys.readouterr().out == document(TOPOLOGY)
    assert main(["--bogus"]) == 2
