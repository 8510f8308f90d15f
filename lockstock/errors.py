"""One base exception, so the CLI can turn any expected failure into a one-line message."""


def describe_kafka_error(exc: BaseException) -> str:
    """confluent-kafka wraps a KafkaError in args[0]; its .str() is the readable part."""
    error = exc.args[0] if exc.args else None
    return error.str() if hasattr(error, "str") else str(exc)


class LockstockError(Exception):
    """An expected failure with a message fit for an operator (no traceback needed)."""


class SettingsError(LockstockError):
    """A setting (environment variable or CLI flag) has an invalid value."""


class BrokerError(LockstockError):
    """The Kafka cluster cannot be reached or the embedded broker cannot run."""


class CodecError(LockstockError):
    """A payload cannot be encoded or decoded with the project's Avro schemas."""


class WrongRecordError(CodecError):
    """A payload decodes, but as a record its topic does not carry."""


class SchemaError(LockstockError):
    """An Avro schema file is missing, malformed or inconsistent."""


class RegistryError(LockstockError):
    """The schema registry cannot be reached, refuses a request, or cannot be run."""
