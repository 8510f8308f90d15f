from pathlib import Path

import pytest

from lockstock.errors import SettingsError
from lockstock.settings import Settings, parse_bootstrap, parse_port


def test_defaults_mean_embedded_broker_and_local_state():
    settings = Settings.from_env({})
    assert settings.embedded and settings.bootstrap_servers is None
    assert settings.data_dir == Path(".lockstock")
    assert settings.topic_prefix == "lockstock" and settings.partitions == 4


def test_environment_is_read_and_flags_override_it():
    env = {"KAFKA_BOOTSTRAP_SERVERS": " b1:9092, PLAINTEXT://b2:9093 ", "LOCKSTOCK_PARTITIONS": "8",
           "LOCKSTOCK_DATA_DIR": "/var/lib/lockstock", "SCHEMA_REGISTRY_URL": "http://registry:8081/"}
    settings = Settings.from_env(env, partitions="12")
    assert settings.bootstrap_servers == "b1:9092,b2:9093"
    assert settings.partitions == 12
    assert settings.data_dir == Path("/var/lib/lockstock")
    assert settings.schema_registry_url == "http://registry:8081"
    assert not settings.embedded


def test_as_env_reproduces_the_settings():
    settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "h:1", "LOCKSTOCK_TOPIC_PREFIX": "shop7"})
    assert Settings.from_env(settings.as_env()) == settings


@pytest.mark.parametrize(
    "env, message",
    [
        ({"KAFKA_BOOTSTRAP_SERVERS": "nonsense"}, "not host:port"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "h:99999"}, "must be <= 65535"),
        ({"KAFKA_BOOTSTRAP_SERVERS": ","}, "set but empty"),
        ({"LOCKSTOCK_PARTITIONS": "0"}, "partitions must be >= 1"),
        ({"LOCKSTOCK_PARTITIONS": "four"}, "whole number"),
        ({"LOCKSTOCK_PARTITIONS": "-3"}, "partitions must be >= 1"),
        ({"LOCKSTOCK_TOPIC_PREFIX": "bad prefix!"}, "topic prefix"),
        ({"LOCKSTOCK_BROKER_PROFILE": "redis"}, "broker profile"),
        ({"SCHEMA_REGISTRY_URL": "registry:8081"}, "SCHEMA_REGISTRY_URL"),
        ({"LOCKSTOCK_WEB_PORT": "70000"}, "web port must be <= 65535"),
        ({"LOCKSTOCK_GROUP_SESSION_TIMEOUT_S": "3"}, r"group session timeout \(s\) must be >= 6"),
        ({"LOCKSTOCK_GROUP_SESSION_TIMEOUT_S": "ten"}, "must be a whole number"),
    ],
)
def test_bad_values_are_one_line_errors(env, message):
    with pytest.raises(SettingsError, match=message) as info:
        Settings.from_env(env)
    assert "\n" not in str(info.value)


def test_parsers():
    assert parse_port("0", allow_zero=True) == 0
    with pytest.raises(SettingsError):
        parse_port("0")
    with pytest.raises(SettingsError):
        parse_port(True)
    assert parse_bootstrap("[::1]:9092") == "[::1]:9092"


def test_group_timing_follows_the_session_timeout_and_the_embedded_profile_overrides_it():
    from lockstock.broker.profile import EMBEDDED
    from streams.app import group_timing

    timing = group_timing(Settings.from_env({"LOCKSTOCK_GROUP_SESSION_TIMEOUT_S": "30"}))
    assert timing == {"broker_session_timeout": 30.0, "broker_heartbeat_interval": 10.0}
    assert {**timing, **EMBEDDED.faust}["broker_session_timeout"] == 3.0  # tansu's group join wait
