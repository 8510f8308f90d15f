"""The pre-stream load test: traffic shapes and order mixes (profile), and the independent
accounting of what came back (tally). Pure code; `lockstock loadtest` moves it over Kafka (run,
chaos), watching for workers that die (deaths); `lockstock bench` adds the ceilings (passthrough,
faustfloor), the hot-SKU row (hotsku) and what the workers cost (resources)."""
