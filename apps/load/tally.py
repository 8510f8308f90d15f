"""What came back, counted independently of the engine: per order the first decision (for
latency) and the latest (the final word), units held per SKU recomputed from final decisions
(oversold = held beyond the stock the run set), and orders still without any decision."""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lockstock.stats import percentile


@dataclass
class Tally:
    stock: dict[str, int]  # sku -> units the run set
    sent_at: dict[str, int] = field(default_factory=dict)  # order id -> placed_at (ms)
    first: dict[str, str] = field(default_factory=dict)  # order id -> first status
    final: dict[str, dict] = field(default_factory=dict)  # order id -> latest decision
    decisions_seen: int = 0
    flips: list[str] = field(default_factory=list)  # orders whose decision changed in a way no lifecycle allows
    latencies_ms: array = field(default_factory=lambda: array("d"))

    def sent(self, order: dict) -> None:
        self.sent_at.setdefault(order["order_id"], order["placed_at"])

    def decided(self, decision: dict, received_ms: int) -> bool:
        """Count one decision; True when it is the order's first."""
        order_id = decision["order_id"]
        if order_id not in self.sent_at:
            return False
        self.decisions_seen += 1
        previous = self.final.get(order_id)
        if previous is not None and not allowed_change(previous["status"], decision["status"]):
            self.flips.append(order_id)
        self.final[order_id] = decision
        if order_id in self.first:
            return False
        self.first[order_id] = decision["status"]
        self.latencies_ms.append(max(0, received_ms - self.sent_at[order_id]))
        return True

    def held(self) -> Counter:
        return self.holdings()[0]

    def holdings(self) -> tuple[Counter, Counter]:
        """Per SKU: units held and orders holding them, by the final decisions."""
        units: Counter = Counter()
        holders: Counter = Counter()
        for decision in self.final.values():
            if decision["status"] == "LOCKED":
                for line in decision["lines"]:
                    units[line["sku"]] += line["qty"]
                    holders[line["sku"]] += 1
        return units, holders

    def oversold(self) -> int:
        held = self.held()
        return sum(max(0, held[sku] - total) for sku, total in self.stock.items())

    def undecided(self) -> int:
        return len(self.sent_at) - len(self.first)

    def undecided_sample(self, limit: int = 10) -> list[str]:
        return sorted(o for o in self.sent_at if o not in self.first)[:limit]

    def latency(self) -> dict[str, float]:
        values = sorted(self.latencies_ms)
        if not values:
            return {}
        return {f"p{q}_ms": round(percentile(values, q), 1) for q in (50, 95, 99)} | {"max_ms": round(values[-1], 1)}

    def summary(self) -> dict[str, Any]:
        statuses = Counter(d["status"] for d in self.final.values())
        reasons = Counter(f"{d['status']}:{d.get('reason') or '-'}" for d in self.final.values() if d["status"] != "LOCKED")
        return {"orders": len(self.sent_at), "decided": len(self.first), "undecided": self.undecided(),
                "undecided_sample": self.undecided_sample(), "decisions_seen": self.decisions_seen, "flipped": len(self.flips), "final_status": dict(statuses), "reasons": dict(reasons),
                "latency": self.latency(), "held_units": sum(self.held().values()), "oversold": self.oversold()}


def allowed_change(before: str, after: str) -> bool:
    """A repeated decision is the same one; the only change a lifecycle makes is a locked order
    released (cancelled or unpaid). LOCKED after REJECTED, or REJECTED after LOCKED, is a bug."""
    return before == after or (before == "LOCKED" and after == "RELEASED")
