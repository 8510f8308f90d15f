"""lockstock's registry subjects: named as the codec registers them, all pinned to BACKWARD."""

from __future__ import annotations

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from lockstock.codec import RegistryCodec
from lockstock.errors import RegistryError
from lockstock.subjects import BACKWARD, lockstock_subjects, set_backward


def test_subjects_are_the_ones_the_codec_registers():
    client = SchemaRegistryClient.new_client({"url": "mock://subjects"})
    codec = RegistryCodec("mock://subjects", client=client)
    subjects = list(lockstock_subjects("shop7"))
    for subject in subjects:
        codec.schema_id(subject.topic, subject.record)
    assert sorted(client.get_subjects()) == sorted(s.name for s in subjects)
    assert "shop7.lock.requests-io.lockstock.LineLockRequests" in {s.name for s in subjects}


class RecordingClient:
    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail_on = fail_on

    def set_compatibility(self, subject_name: str, level: str) -> dict:
        if subject_name == self.fail_on:
            raise ConnectionRefusedError("connection refused")
        self.calls.append((subject_name, level))
        return {"compatibility": level}


def test_every_subject_is_set_to_backward():
    client = RecordingClient()
    levels = set_backward("http://registry:8081", "shop7", client=client)
    names = [s.name for s in lockstock_subjects("shop7")]
    assert client.calls == [(name, BACKWARD) for name in names]
    assert levels == {name: BACKWARD for name in names}


def test_a_refusal_names_the_registry_and_subject():
    failing = next(iter(lockstock_subjects("shop7"))).name
    with pytest.raises(RegistryError, match=f"http://registry:8081 did not set BACKWARD on subject {failing}"):
        set_backward("http://registry:8081", "shop7", client=RecordingClient(fail_on=failing))


def test_the_mock_registry_is_left_alone():
    assert set_backward("mock://anything", "shop7", client=RecordingClient(fail_on="*")) == {}
