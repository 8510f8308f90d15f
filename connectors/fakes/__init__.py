"""Local fakes of each marketplace's API for tests and demos: they check signatures and payload
shapes, enforce their rate limit with 429s, keep their own advertised quantities and sell on
their own, sending the platform's signed webhook back to the gateway."""
