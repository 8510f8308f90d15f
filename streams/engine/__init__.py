"""Decision logic as pure functions over plain state objects: no Kafka, no Faust."""
