"""Pure engine tests: decision logic over plain state (streams/engine), no Kafka, Faust or RocksDB."""
