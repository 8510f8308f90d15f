"""lockstock's shared core, the bottom layer: settings, the topic registry, the Avro codec,
Kafka client factories, the group-less reader, the dead-letter record, the channel catalog, the
embedded-broker and Apache Kafka profiles and the metrics. Streams (``streams/``) and connectors
(``connectors/``) build on it, the applications (``apps/``) on all three; the core imports none
of them (the layers contract in pyproject.toml)."""

__version__ = "0.1.0"
