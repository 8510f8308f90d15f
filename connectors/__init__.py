"""Marketplace connectors: inbound signed webhooks and outbound stock pushers, one adapter per
platform behind one interface (issue 4). They use lockstock's core (codec, producer factory,
topic registry) and own no Kafka plumbing of their own."""
