"""One base exception, so the CLI can turn any expected failure into a one-line message."""


class LockstockError(Exception):
    """An expected failure with a message fit for an operator (no traceback needed)."""


class SettingsError(LockstockError):
    """A setting (environment variable or CLI flag) has an invalid value."""


class BrokerError(LockstockError):
    """The Kafka cluster cannot be reached or the embedded broker cannot run."""


class CodecError(LockstockError):
    """A payload cannot be encoded or decoded with the project's Avro schemas."""


class SchemaError(LockstockError):
    """An Avro schema file is missing, malformed or inconsistent."""
