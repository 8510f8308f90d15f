"""The Apache Kafka nodes' files, ports, cluster id and jar cache, as plain functions (no JVM)."""

from __future__ import annotations

import base64
import os
import stat
import uuid

import pytest

from lockstock.broker.apache import jars
from lockstock.broker.apache.cluster import ApacheKafka, recorded_cluster_id
from lockstock.broker.apache.config import (
    NodePorts, java_command, new_cluster_id, pick_ports, render_properties, server_properties,
)
from lockstock.broker.profile import TANSU_MARKER
from lockstock.errors import BrokerError

ONE = [NodePorts(9092, 19093)]
THREE = [NodePorts(9092, 19093), NodePorts(9094, 19095), NodePorts(9096, 19097)]


def test_a_single_node_is_broker_and_controller_with_replication_it_can_satisfy(tmp_path):
    props = server_properties(1, ONE, tmp_path / "data")
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path / "data")
    for key in ("default.replication.factor", "min.insync.replicas", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor", "transaction.state.log.min.isr",
                "share.coordinator.state.topic.replication.factor", "share.coordinator.state.topic.min.isr"):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_three_nodes_share_one_static_quorum_and_replicate_three_ways(tmp_path):
    every = [server_properties(n, THREE, tmp_path / f"node-{n}") for n in (1, 2, 3)]
    assert {p["controller.quorum.voters"] for p in every} == {
        "1@127.0.0.1:19093,2@127.0.0.1:19095,3@127.0.0.1:19097"}
    assert [p["node.id"] for p in every] == ["1", "2", "3"]
    assert every[1]["listeners"] == "PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:19095"
    assert len({p["log.dirs"] for p in every}) == 3
    for props in every:
        assert props["default.replication.factor"] == "3"
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["transaction.state.log.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        assert props["transaction.state.log.min.isr"] == "2"


def test_properties_render_one_key_per_line_and_escape_backslashes():
    text = render_properties({"a.b": "1", "log.dirs": r"C:\kafka"})
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == ["a.b=1", r"log.dirs=C:\\kafka"]


def test_ports_are_distinct_and_the_first_client_port_is_the_one_asked_for():
    ports = pick_ports(3, first_client=39092)
    assert ports[0].client == 39092
    flat = [port for p in ports for port in (p.client, p.controller)]
    assert len(set(flat)) == 6 and all(flat)


def test_cluster_id_is_kafka_shaped_and_never_reads_as_the_embedded_broker(monkeypatch):
    embedded_looking = uuid.UUID(bytes=base64.urlsafe_b64decode("tansuAAAAAAAAAAAAAAAAA=="))
    draws = iter([embedded_looking, uuid.UUID(int=12345)])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(draws))
    cluster_id = new_cluster_id()
    assert TANSU_MARKER not in cluster_id.lower()
    assert len(cluster_id) == 22 and base64.urlsafe_b64decode(cluster_id + "==") == uuid.UUID(int=12345).bytes


def test_a_data_dir_keeps_its_cluster_id_and_refuses_another_node_count(tmp_path):
    first = recorded_cluster_id(tmp_path, 3)
    assert recorded_cluster_id(tmp_path, 3) == first
    with pytest.raises(BrokerError, match="3-node cluster, not 1"):
        recorded_cluster_id(tmp_path, 1)


def test_only_one_or_three_nodes():
    with pytest.raises(BrokerError, match="1 or 3"):
        ApacheKafka(nodes=2)


def test_java_command_bounds_the_heap_and_uses_the_serial_collector(tmp_path):
    command = java_command("java", tmp_path / "jars", tmp_path / "log4j2.properties", "kafka.Kafka", "server.properties")
    assert command[0] == "java" and command[-2:] == ["kafka.Kafka", "server.properties"]
    assert "-Xmx512m" in command and "-XX:+UseSerialGC" in command
    assert command[command.index("-cp") + 1] == f"{tmp_path / 'jars'}/*"


# -- the jar cache -------------------------------------------------------------------------

def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(jars.CACHE_ENV, str(tmp_path / "k"))
    assert jars.cache_dir() == tmp_path / "k"
    monkeypatch.delenv(jars.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert jars.cache_dir() == tmp_path / "lockstock" / f"kafka-{jars.KAFKA_VERSION}"


def test_resolved_jars_are_used_without_maven(monkeypatch, tmp_path):
    done = tmp_path / "jars"
    done.mkdir()
    (done / jars.STAMP).write_text(jars.pom_hash())
    monkeypatch.setattr(jars.shutil, "which", lambda name: None)  # running mvn would fail
    assert jars.resolve_jars(tmp_path) == done


def test_jars_from_another_pom_are_resolved_again_and_a_maven_failure_carries_its_output(monkeypatch, tmp_path):
    stale = tmp_path / "cache" / "jars"
    stale.mkdir(parents=True)
    (stale / jars.STAMP).write_text("an older pom")
    fake_mvn = tmp_path / "bin" / "mvn"
    fake_mvn.parent.mkdir()
    fake_mvn.write_text("#!/bin/sh\necho 'Could not transfer artifact org.apache.kafka:kafka_2.13'\nexit 1\n")
    fake_mvn.chmod(fake_mvn.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake_mvn.parent}{os.pathsep}{os.environ['PATH']}")
    messages: list[str] = []
    with pytest.raises(BrokerError, match="Could not transfer artifact"):
        jars.resolve_jars(tmp_path / "cache", progress=messages.append)
    assert any("resolving Apache Kafka" in m for m in messages)
    assert (stale / jars.STAMP).read_text() == "an older pom"  # untouched until a resolution completes
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".staging")] == []


def test_maven_missing_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(jars.shutil, "which", lambda name: None)
    with pytest.raises(BrokerError, match="apt-get install maven"):
        jars.resolve_jars(tmp_path)


def test_the_pom_ships_with_the_package():
    assert jars.POM.is_file() and f"<kafka.version>{jars.KAFKA_VERSION}</kafka.version>" in jars.POM.read_text()
