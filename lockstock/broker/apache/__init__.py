"""A real Apache Kafka (KRaft) cluster without Docker: the broker's jars from Maven Central
(``jars``), the files each node runs with (``config``), and the JVM processes (``cluster``).

Needs Java 17+; Maven the first time only (the jars are then cached, see ``jars.cache_dir``).
"""

from lockstock.broker.apache.cluster import ApacheKafka
from lockstock.broker.apache.jars import KAFKA_VERSION, cache_dir, resolve_jars

__all__ = ["ApacheKafka", "KAFKA_VERSION", "cache_dir", "resolve_jars"]
