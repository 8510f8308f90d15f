"""The audit hash chain as pure functions: every stock movement makes one chained record, a
replay makes the same record again, and each way of tampering is caught at its first link."""

from __future__ import annotations

import copy

from streams.engine import audit
from streams.engine.audit import GENESIS, Link, record_hash, verify_chain
from streams.engine.commands import apply_command
from streams.engine.state import SkuState
from streams.engine.stock import apply_line_request
from tests.builders import CATALOG, NOW, inventory_command, line_lock_request


def line(order_id: str, action: str = "LOCK", qty: int = 1, **fields) -> dict:
    """A line of this module's orders: each order has a buyer of its own, buyer-<order id>."""
    return line_lock_request(order_id, qty, action=action, buyer_id=f"buyer-{order_id}", **fields)


def step(state: SkuState | None, event: dict, at: int) -> tuple[SkuState, dict | None]:
    """What the stock agent does per event: apply, then chain the movement if counts changed."""
    before = audit.balances(state)
    if "action" in event:
        state, result, alerts = apply_line_request(state, event, CATALOG, NOW)
        movement = audit.line_movement(event, result, alerts)
    else:
        state, applied, alerts = apply_command(state, event, CATALOG, NOW)
        movement = audit.command_movement(event, alerts)
    return state, audit.append_movement(state, before, at=at, **movement)


STREAM = [
    inventory_command("SET_STOCK", "set-1", total=100, regions={"US": 40, "EU": 40}, flex_pct=0),
    line("o-1", qty=3),
    line("o-2", qty=2, region="EU"),
    line("o-1", "COMMIT", qty=3),
    line("o-2", "RELEASE", qty=2, region="EU", reason="CANCELLED"),
    line("o-1", "SHIP", qty=3, warehouse="LA"),
    line("o-3", qty=500),  # rejected: out of stock, nothing moves
    inventory_command("RESTOCK", "re-1", quantity=30, region="US", eta=NOW + 36 * 3600_000),
    inventory_command("TRANSFER", "tr-1", quantity=5, region="US", to_region="EU"),
    inventory_command("ADJUST", "adj-1", quantity=-2, region="EU", reason="damaged"),
    inventory_command("SET_PURCHASE_LIMIT", "lim-1", buyer_limit=2),  # a rule, not a movement
    inventory_command("RESTOCK", "rcv-1", transit_id="re-1"),
]


def chain() -> tuple[SkuState, list[dict]]:
    state, records = None, []
    for i, event in enumerate(STREAM):
        state, record = step(state, event, at=NOW + i)
        if record:
            records.append(record)
    return state, records


def links(records: list[dict]) -> list[Link]:
    return [Link(r, f"offset {i}") for i, r in enumerate(records)]


def test_every_movement_is_one_chained_record_and_rules_are_not():
    state, records = chain()
    assert [r["movement"] for r in records] == [
        "SET_STOCK", "LOCK", "LOCK", "COMMIT", "RELEASE", "SHIP", "RESTOCK", "TRANSFER", "ADJUST", "RECEIVE"]
    assert [r["seq"] for r in records] == list(range(1, 11))
    assert records[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(records, records[1:]))
    assert all(record_hash(r) == r["hash"] for r in records)
    assert (state.audit_seq, state.audit_head) == (10, records[-1]["hash"])
    ship = records[5]
    assert ship["ref"] == "o-1" and ship["qty"] == 3 and "warehouse LA" in ship["detail"]
    assert ship["balances"]["US.shipped"] == 3 and ship["balances"]["wh.LA"] == records[4]["balances"]["wh.LA"] - 3
    assert records[6]["balances"]["in_transit"] == 30 and "ETA" in records[6]["detail"]
    assert records[-1]["balances"]["in_transit"] == 0 and "re-1 received" in records[-1]["detail"]
    assert records[8]["qty"] == -2 and "damaged" in records[8]["detail"]


def test_an_intact_chain_verifies_and_is_anchored_to_the_state_head():
    state, records = chain()
    report = verify_chain("A", links(records), state_head=(state.audit_seq, state.audit_head))
    assert report.ok, report.broken
    assert (report.records, report.head_seq, report.head_hash) == (10, 10, state.audit_head)


def test_a_replay_before_the_state_was_written_makes_identical_records_counted_as_duplicates():
    _, records = chain()
    replayed_state, replayed = chain()  # the same inputs with the same Kafka timestamps
    assert replayed == records
    report = verify_chain("A", links(records[:7] + records[5:7] + records[7:]),
                          state_head=(replayed_state.audit_seq, replayed_state.audit_head))
    assert report.ok and report.duplicates == 2


def test_a_redelivered_input_after_the_state_was_written_makes_no_record():
    state, records = chain()
    again, record = step(copy.deepcopy(state), STREAM[1], at=NOW + 99)  # o-1's lock again
    assert record is None and again.audit_seq == state.audit_seq


def test_an_altered_record_is_caught_at_its_own_link():
    _, records = chain()
    records[4] = {**records[4], "qty": 20}
    report = verify_chain("A", links(records))
    assert not report.ok and report.broken_seq == 5 and report.broken_where == "offset 4"
    assert "does not match its hash" in report.broken


def test_an_altered_and_rehashed_record_is_caught_at_the_next_link():
    _, records = chain()
    forged = {**records[4], "balances": {**records[4]["balances"], "EU.allocation": 400}}
    forged["hash"] = record_hash(forged)
    records[4] = forged
    report = verify_chain("A", links(records))
    assert report.broken_seq == 6 and "prev_hash does not match the hash of seq 5" in report.broken


def test_a_removed_record_and_a_reordered_chain_are_caught():
    _, records = chain()
    gap = verify_chain("A", links(records[:3] + records[4:]))
    assert gap.broken_seq == 5 and "records missing" in gap.broken
    swapped = verify_chain("A", links(records[:3] + [records[4], records[3]] + records[5:]))
    assert swapped.broken_seq == 5 and not swapped.ok


def test_a_forged_record_with_a_valid_link_at_a_used_seq_is_a_fork():
    _, records = chain()
    forged = {**records[2], "qty": 1, "detail": "nothing to see"}
    forged["hash"] = record_hash(forged)
    report = verify_chain("A", links(records + [forged]))
    assert report.broken_seq == 3 and "appears twice with different content" in report.broken


def test_a_chain_cut_short_at_its_end_is_caught_by_the_state_head():
    state, records = chain()
    report = verify_chain("A", links(records[:-2]), state_head=(state.audit_seq, state.audit_head))
    assert report.broken_seq == 9 and "topic ends at seq 8" in report.broken
    other = verify_chain("A", links(records), state_head=(10, "f" * 64))
    assert not other.ok and "different hash for seq 10" in other.broken


def test_records_of_another_sku_and_undecodable_records_break_the_chain():
    _, records = chain()
    foreign = verify_chain("B", links(records))
    assert foreign.broken_seq == 1 and "record of SKU 'A'" in foreign.broken
    junk = verify_chain("A", links(records[:2]) + [Link({}, "offset 2", error="undecodable record: bad magic")])
    assert junk.broken_seq == 3 and junk.broken == "undecodable record: bad magic"


def test_a_state_written_before_the_audit_existed_starts_its_chain_at_genesis():
    old = {k: v for k, v in SkuState("A", total=5).to_dict().items() if not k.startswith("audit_")}
    state = SkuState.from_dict(old)
    assert (state.audit_seq, state.audit_head) == (0, GENESIS)


def test_the_hash_is_over_the_same_bytes_the_first_chains_were_hashed_over():
    """Chains already on the topic were hashed over the standard library's canonical JSON; the
    orjson bytes must be identical or they would no longer verify (unicode, escapes, nesting)."""
    import hashlib
    import json

    record = {"sku": "ÉTÉ-✓ \"q\" \\ \n\t\x01\x1f\u2028 /", "seq": 7, "movement": "LOCK", "ref": "o-1:A", "qty": 2,
              "region": None, "detail": "x\r\b\f", "balances": {"US.locked": 3, "EU.free": -2, "total": 10},
              "at": 1795575000000, "prev_hash": "0" * 64, "hash": "ignored"}
    body = {k: v for k, v in record.items() if k != "hash"}
    stdlib = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert audit.record_hash(record) == hashlib.sha256(stdlib).hexdigest()
