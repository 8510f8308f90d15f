"""Draws streams.topology: a Mermaid flowchart (GitHub renders it) and plain text that reads in a
terminal: a full outline (when each output is written) for docs/topology.md, and one arrow line
per node for the README block between ``<!-- topology:begin -->`` and ``<!-- topology:end -->``."""

from __future__ import annotations

import textwrap

from lockstock.topics import TopicSpec
from streams.topology import Agent, Node, Table, Timer, Topology

README_BEGIN, README_END = "<!-- topology:begin -->", "<!-- topology:end -->"
GENERATOR = "python -m streams.topology"
WIDTH = 100  # the README's line length
NO_BREAK = "\xa0"


def _topic_id(spec: TopicSpec) -> str:
    return "t_" + spec.suffix.replace(".", "_")


def _table_id(table: Table) -> str:
    return f"table_{table.name}"


def mermaid(topology: Topology) -> str:
    """``flowchart LR``: topics as boxes (internal ones dashed), agents as stadiums, the timer as
    a hexagon, tables as cylinders joined to their owner; arrows follow the records."""
    lines = ["flowchart LR"]
    for spec in topology.topics():
        lines.append(f'    {_topic_id(spec)}["{spec.suffix}<br/>key: {spec.key}"]')
    for agent in topology.agents:
        table = agent.table
        lines.append(f'    {agent.name}(["{agent.name}"])')
        lines.append(f'    {_table_id(table)}[("{table.name} table<br/>key: {table.key}")]')
        lines.append(f"    {agent.name} ---|owns| {_table_id(table)}")
    for timer in topology.timers:
        lines.append(f'    {timer.name}{{{{"{timer.name}<br/>timer"}}}}')
        lines.append(f"    {_table_id(timer.scans)} -.->|scans| {timer.name}")
    for agent in topology.agents:
        lines += [f"    {_topic_id(spec)} --> {agent.name}" for spec in agent.inputs]
    for node in topology.nodes:
        lines += [f"    {node.name} --> {_topic_id(spec)}" for spec in node.output_topics]
    internal = [_topic_id(spec) for spec in topology.topics() if spec.internal]
    if internal:
        lines.append("    classDef internal stroke-dasharray: 5 3")
        lines.append(f"    class {','.join(internal)} internal")
    return "\n".join(lines) + "\n"


def _wrapped(label: str, text: str, indent: int) -> list[str]:
    """``label`` then ``text`` wrapped to WIDTH, continuation lines hanging under the text."""
    head = " " * indent + label
    return textwrap.wrap(text, WIDTH, initial_indent=head, subsequent_indent=" " * len(head),
                         break_on_hyphens=False)


def _topic_ref(spec: TopicSpec) -> str:
    return f"{spec.suffix} ({spec.key})"


def _reads(agent: Agent) -> str:
    if all(spec.key == agent.table.key for spec in agent.inputs):  # co-partitioned, as validate wants
        return f"{', '.join(spec.suffix for spec in agent.inputs)} (all keyed by {agent.table.key})"
    return ", ".join(_topic_ref(spec) for spec in agent.inputs)


def _node_outline(topology: Topology, node: Node) -> list[str]:
    if isinstance(node, Agent):
        table = node.table
        lines = [f"{node.name}  agent"]
        lines += _wrapped("does    ", node.does, 2)
        lines += _wrapped("reads   ", _reads(node), 2)
        lines += _wrapped("owns    ", f"{table.name} table ({table.key}; changelog "
                                     f"{table.changelog('<app_id>')}): {table.holds}", 2)
    else:
        assert isinstance(node, Timer)
        lines = [f"{node.name}  timer, every {node.every}"]
        lines += _wrapped("does    ", node.does, 2)
        lines += _wrapped("scans   ", f"{node.scans.name} table (owned by {topology.owner_of(node.scans).name})", 2)
    label = "writes  "
    for output in node.outputs:
        lines += _wrapped(label, f"{_topic_ref(output.topic)}: {output.when}", 2)
        label = " " * len(label)
    return lines


def outline(topology: Topology) -> str:
    """Each node: what it does, what it reads, the table it owns or scans, and when it writes
    each output topic (under the key in brackets)."""
    return "\n\n".join("\n".join(_node_outline(topology, node)) for node in topology.nodes) + "\n"


def compact(topology: Topology) -> str:
    """One arrow line per node, in the style of the diagrams this replaced: inputs (their shared
    key) --> node [table] --> outputs (key)."""
    lines: list[str] = []
    for node in topology.nodes:
        # No-break spaces keep "deadletter (original key)" on one line; put back after wrapping.
        writes = ", ".join(_topic_ref(spec).replace(" ", NO_BREAK) for spec in node.output_topics)
        if isinstance(node, Agent):
            lines.append(f"{' + '.join(spec.suffix for spec in node.inputs)} ({node.table.key})")
            flow = f"--> {node.name} [{node.table.name} table] --> {writes}"
            lines += textwrap.wrap(flow, WIDTH, initial_indent="    ", subsequent_indent=" " * 8,
                                   break_on_hyphens=False)
        else:
            flow = f"[{node.scans.name} table] --> {node.name} (timer) --> {writes}"
            lines += textwrap.wrap(flow, WIDTH, subsequent_indent=" " * 8, break_on_hyphens=False)
    return "\n".join(lines).replace(NO_BREAK, " ") + "\n"


def _fenced(language: str, text: str) -> str:
    return f"```{language}\n{text}```\n"


def diagram(topology: Topology) -> str:
    """docs/topology.md's diagram: the flowchart and the outline."""
    return f"{_fenced('mermaid', mermaid(topology))}\n{_fenced('text', outline(topology))}"


def readme_block(topology: Topology) -> str:
    """What sits between the README's markers (a test compares the two)."""
    note = f"<!-- generated by `{GENERATOR} --readme` from streams/topology.py; do not edit by hand -->"
    return (f"\n{note}\n{_fenced('mermaid', mermaid(topology))}\n{_fenced('text', compact(topology))}\n"
            "When each output is written, and what each table holds: "
            "[docs/topology.md](docs/topology.md).\n")


def readme_section(topology: Topology) -> str:
    return f"{README_BEGIN}{readme_block(topology)}{README_END}\n"


def document(topology: Topology) -> str:
    """docs/topology.md."""
    return (
        "# lockstock topology\n\n"
        f"Generated by `{GENERATOR}` from `streams/topology.py`; do not edit by hand.\n"
        "Topics by registry suffix (names are `<prefix>.<suffix>`, see [topics.md](topics.md));\n"
        "internal topics dashed. Every hop is keyed so the state it touches is owned by one\n"
        "partition's worker: each agent's inputs share its table's key.\n\n"
        f"{diagram(topology)}"
    )


def between_markers(text: str) -> str | None:
    """The README's text between the topology markers, or None without both."""
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        return None
    return text[begin + len(README_BEGIN):end]
