"""lockstock's shared core: settings, the topic registry, the Avro codec, Kafka client
factories and the embedded-broker profile. Streams (``streams/``), connectors
(``connectors/``) and the CLI build on these and own no Kafka plumbing of their own."""

__version__ = "0.1.0"
