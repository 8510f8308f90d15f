"""The token bucket both sides of a marketplace API use: the sync to stay inside a platform's
budget, the fakes to enforce it (so the two agree on the arithmetic exactly)."""

from __future__ import annotations

import time
from typing import Callable


class TokenBucket:
    """``capacity`` units, refilled continuously at ``refill_per_s``; a call spends its cost."""

    def __init__(self, capacity: float, refill_per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if capacity <= 0 or refill_per_s <= 0:
            raise ValueError(f"a rate budget needs capacity and refill > 0, got {capacity} and {refill_per_s}")
        self.capacity, self.refill_per_s, self.clock = capacity, refill_per_s, clock
        self.tokens, self.at = capacity, clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.refill_per_s)
        self.at = now

    def wait_for(self, cost: float) -> float:
        """Seconds until ``cost`` is available (0: now). A cost above capacity waits for a full bucket."""
        self._refill()
        needed = min(cost, self.capacity)
        return 0.0 if self.tokens + 1e-9 >= needed else (needed - self.tokens) / self.refill_per_s

    def take(self, cost: float = 1.0) -> float:
        """Spend ``cost`` and return 0, or return the seconds to wait without spending."""
        wait = self.wait_for(cost)
        if wait <= 0:
            self.tokens -= min(cost, self.capacity)
        return wait

    def drain(self) -> None:
        """The platform said we are over budget: assume nothing is left."""
        self._refill()
        self.tokens = 0.0
