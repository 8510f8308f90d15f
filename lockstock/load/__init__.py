"""The pre-stream load test: traffic shapes and order mixes (profile), and the independent
accounting of what came back (tally). Pure code; `lockstock loadtest` moves it over Kafka."""
