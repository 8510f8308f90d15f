"""Invariants of the lock engine over random streams (hypothesis).

Per SKU, after every step of a random mix of stock commands and line requests:
  * every counter is >= 0 and a region never sells more than its allocation;
  * total == flex + sum(allocations);
  * units are conserved: the reservations account for exactly the locked and paid units,
    and the buyers map for exactly the units held or shipped per buyer;
  * a refused command changes nothing, a duplicate LOCK changes nothing;
  * the state survives its dict form.
And for the order desk with the stock side: an order is all-or-nothing across its SKUs,
whatever order the messages arrive in.
"""

from __future__ import annotations

import copy
from collections import defaultdict, deque
from functools import partial

from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from streams.engine import orders as desk
from streams.engine.commands import CommandError, apply_command
from streams.engine.state import SkuState
from streams.engine.stock import LOCKED, REJECTED, RELEASED, SHIPPED, apply_line_request
from tests.builders import CATALOG, inventory_command, line_lock_request, order_event, order_placed, with_rules

# the automatic reactions fire on small streams
BUSY = with_rules(flex_chunk=3, limit_min_units=5, realloc_min_units=5, velocity_window_s=60)
REGIONS = list(CATALOG.regions)
CHANNELS = list(CATALOG.channels)
WAREHOUSES = [w for r in CATALOG.regions.values() for w in r.warehouses]
ORDER_IDS = [f"o{n}" for n in range(14)]
COMMAND_IDS = [f"c{n}" for n in range(60)]
T0 = 100_000_000

# -- random streams of line requests and commands -------------------------------------------------------

# mostly valid values, with the occasional bad one (the command must then be refused, changing nothing)
maybe_region = st.sampled_from(REGIONS * 3 + ["flex", "flex", None, "MARS"])
quantity = st.one_of(st.integers(1, 40), st.sampled_from([0, -1, -5, 1000]))
maybe_warehouse = st.sampled_from([None] * 5 + WAREHOUSES + ["XX"])

lock_op = st.tuples(st.just("LOCK"), st.sampled_from(ORDER_IDS), st.integers(1, 25),
                    st.sampled_from(REGIONS * 4 + ["MARS"]), st.sampled_from(CHANNELS),
                    st.sampled_from(["b1", "b2", "b3", "b4"]))
release_op = st.tuples(st.just("RELEASE"), st.sampled_from(ORDER_IDS), st.sampled_from([None, "CANCELLED", "COMPENSATION"]))
commit_op = st.tuples(st.just("COMMIT"), st.sampled_from(ORDER_IDS))
ship_op = st.tuples(st.just("SHIP"), st.sampled_from(ORDER_IDS), st.one_of(st.none(), st.sampled_from(WAREHOUSES)))

set_stock_cmd = st.fixed_dictionaries({
    "type": st.just("SET_STOCK"), "total": st.one_of(st.integers(0, 400), st.sampled_from([-1, None])),
    "regions": st.one_of(st.none(), st.dictionaries(st.sampled_from(REGIONS * 3 + ["MARS"]), st.integers(-5, 200))),
    "flex_pct": st.sampled_from([None, 0, 10, 20, 50, 100, 120]),
    "proportional": st.booleans(),
    "warehouses": st.one_of(st.none(), st.dictionaries(st.sampled_from(WAREHOUSES + ["XX"]), st.integers(-1, 200))),
})
valid_set_stock_cmd = st.fixed_dictionaries({
    "type": st.just("SET_STOCK"), "total": st.integers(0, 400),
    "regions": st.one_of(st.none(), st.dictionaries(st.sampled_from(REGIONS), st.integers(0, 120))),
    "flex_pct": st.sampled_from([None, 0, 10, 20, 50]), "proportional": st.just(True),
})
restock_cmd = st.fixed_dictionaries({
    "type": st.just("RESTOCK"), "quantity": quantity, "region": maybe_region, "warehouse": maybe_warehouse,
    "eta_in_s": st.one_of(st.none(), st.integers(-100, 1000)),
})
# receiving a shipment: "transit_id" is filled in with one that is in transit (index into them), or a bogus one
receive_cmd = st.fixed_dictionaries({"type": st.just("RESTOCK"), "transit_pick": st.integers(0, 9),
                                     "quantity": st.one_of(st.none(), quantity)})
transfer_cmd = st.fixed_dictionaries({"type": st.just("TRANSFER"), "quantity": quantity, "region": maybe_region,
                                      "to_region": maybe_region})
adjust_cmd = st.fixed_dictionaries({"type": st.just("ADJUST"), "quantity": st.one_of(quantity, quantity.map(lambda q: -q)),
                                    "region": maybe_region, "warehouse": maybe_warehouse})
limit_cmd = st.fixed_dictionaries({"type": st.just("SET_PURCHASE_LIMIT"),
                                   "buyer_limit": st.one_of(st.integers(1, 8), st.sampled_from([None, 0]))})
clear_cmd = st.fixed_dictionaries({"type": st.just("CLEAR_PURCHASE_LIMIT")})
channel_cmd = st.fixed_dictionaries({"type": st.sampled_from(["PAUSE_CHANNEL", "RESUME_CHANNEL"]),
                                     "channel": st.sampled_from(CHANNELS + ["myspace"])})


def weighted(*choices):
    """One of the strategies, each ``weight`` times as likely."""
    return st.sampled_from([strategy for weight, strategy in choices for _ in range(weight)]).flatmap(lambda s: s)


command_op = st.tuples(st.just("COMMAND"), st.sampled_from(COMMAND_IDS), weighted(
    (1, set_stock_cmd), (1, valid_set_stock_cmd), (3, restock_cmd), (2, receive_cmd), (2, transfer_cmd),
    (2, adjust_cmd), (1, limit_cmd), (1, clear_cmd), (1, channel_cmd)))

step_op = st.tuples(st.integers(0, 30_000), weighted(
    (8, lock_op), (3, release_op), (2, commit_op), (3, ship_op), (6, command_op)))
first_set = st.tuples(st.just(0), st.tuples(st.just("COMMAND"), st.just("c-first"), valid_set_stock_cmd))


line_request = partial(line_lock_request, placed_at=T0)  # the random streams' lines were placed at T0


def make_command(command_id, spec, now, state=None):
    cmd = {"command_id": command_id, "sku": "A", "issued_at": now, **spec}
    eta_in_s = cmd.pop("eta_in_s", None)
    cmd["eta"] = None if eta_in_s is None else now + eta_in_s * 1000
    if "transit_pick" in cmd:
        shipments = sorted(state.in_transit) if state else []
        pick = cmd.pop("transit_pick")
        cmd["transit_id"] = shipments[pick % len(shipments)] if shipments and pick < 8 else f"bogus-{pick}"
    return cmd


def check_invariants(state: SkuState, catalog, shipped_by_buyer: dict[str, int]) -> None:
    assert state.flex >= 0 and state.total >= 0
    assert state.total == state.flex + sum(r.allocation for r in state.regions.values())
    assert set(state.regions) <= set(catalog.regions)
    for name, region in state.regions.items():
        assert min(region.allocation, region.locked, region.paid, region.shipped) >= 0, (name, region)
        assert region.locked + region.paid + region.shipped <= region.allocation, (name, region)
        held = [r for r in state.reservations.values() if r.region == name]
        assert sum(r.qty for r in held if not r.paid) == region.locked, name
        assert sum(r.qty for r in held if r.paid) == region.paid, name
    assert all(r.qty > 0 for r in state.reservations.values())
    assert not set(state.reservations) & set(state.history)
    expected_buyers = defaultdict(int, shipped_by_buyer)
    for reservation in state.reservations.values():
        expected_buyers[reservation.buyer] += reservation.qty
    assert state.buyers == {b: n for b, n in expected_buyers.items() if n > 0}
    if state.buyer_limit is not None:
        assert state.buyer_limit >= 1 and state.limit_source in ("auto", "operator")
    assert all(n >= 0 for n in state.warehouses.values())
    assert set(state.warehouses) <= set(WAREHOUSES)
    assert all(t["qty"] > 0 for t in state.in_transit.values())
    assert state.paused == sorted(set(state.paused)) and set(state.paused) <= set(catalog.channels)
    assert state.available >= 0 and state.ship_shortfall >= 0
    assert state.open_reservations == len(state.reservations)
    data = copy.deepcopy(state.to_dict())
    assert SkuState.from_dict(copy.deepcopy(data)).to_dict() == data


def expected_replay(state: SkuState, order_id: str) -> tuple[str, str | None] | None:
    """What a LOCK for ``order_id`` must answer if the SKU already knows the order."""
    if order_id in state.reservations:
        return LOCKED, None
    if order_id in state.history:
        status, _, reason = state.history[order_id].partition(":")
        return (LOCKED, None) if status == SHIPPED else (status, reason or None)
    return None


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalog=st.sampled_from([CATALOG, BUSY]), first=first_set, steps=st.lists(step_op, min_size=20, max_size=80))
def test_stock_invariants_hold_on_random_streams(catalog, first, steps):
    state: SkuState | None = None
    now = T0
    shipped_by_buyer: dict[str, int] = defaultdict(int)
    for dt, op in [first, *steps]:
        now += dt
        before = copy.deepcopy(state)
        kind = op[0]
        if kind == "COMMAND":
            cmd = make_command(op[1], op[2], now, state)
            duplicate = state is not None and cmd["command_id"] in state.applied_commands
            try:
                state, applied, alerts = apply_command(state, cmd, catalog, now)
            except CommandError as exc:
                note(f"{cmd['type']} refused")
                assert str(exc)
                # a refused command leaves the state exactly as it was
                assert (state.to_dict() if state else None) == (before.to_dict() if before else None)
                continue
            assert applied != duplicate
            kind_detail = "received" if cmd.get("transit_id") else "in transit" if (
                cmd["type"] == "RESTOCK" and cmd["command_id"] in state.in_transit) else ""
            note(f"{cmd['type']} {kind_detail} {'duplicate' if duplicate else 'applied'}")
            if duplicate:
                assert state.to_dict() == before.to_dict() and alerts == []
            else:
                assert cmd["command_id"] in state.applied_commands
                if cmd["type"] not in ("SET_STOCK", "RESTOCK", "ADJUST"):
                    assert state.total == before.total  # only these change how many units exist
                if cmd.get("transit_id"):  # a shipment landed: its units are sellable now
                    received = before.in_transit[cmd["transit_id"]]["qty"] if cmd["quantity"] is None else cmd["quantity"]
                    assert cmd["transit_id"] not in state.in_transit
                    assert state.total == before.total + received
                    assert state.available == before.available + received
                if cmd["type"] == "RESTOCK" and cmd["eta"] is not None and cmd["eta"] > now and not cmd.get("transit_id"):
                    assert state.total == before.total and cmd["command_id"] in state.in_transit
            # shipped units stay shipped whatever the operator does
            for name, region in (before.regions.items() if before else ()):
                assert state.regions[name].shipped == region.shipped
        else:
            order_id = op[1]
            if kind == "LOCK":
                _, _, qty, region, channel, buyer = op
                request = line_request(order_id, qty, region=region, channel=channel, buyer_id=buyer)
            elif kind == "RELEASE":
                request = line_request(order_id, action="RELEASE", reason=op[2])
            elif kind == "COMMIT":
                request = line_request(order_id, action="COMMIT")
            else:
                request = line_request(order_id, action="SHIP", warehouse=op[2])
            held = state.reservations.get(order_id) if state else None
            replay = expected_replay(state, order_id) if state and kind == "LOCK" else None
            state, result, alerts = apply_line_request(state, request, catalog, now)
            if result is not None:
                note(f"LOCK -> {result['status']} {result['reason'] or ''}{' (replay)' if replay else ''}")
            if state is None:
                assert before is None and (kind != "LOCK" or result["reason"] == "UNKNOWN_SKU")
                continue
            assert state.total == before.total
            if kind == "LOCK":
                assert result["order_id"] == order_id and result["decided_at"] == now
                if replay is not None:  # a duplicate LOCK never changes anything
                    assert state.to_dict() == before.to_dict() and alerts == []
                    assert result["status"] == replay[0]
                    if replay[0] != LOCKED:
                        assert result["reason"] == replay[1]
                elif result["status"] == LOCKED:
                    assert state.reservations[order_id].qty == qty and result["region"] == region
                    assert state.available == before.available - qty
                    assert state.regions[region].locked == before.regions[region].locked + qty
                    if before.buyer_limit is not None:
                        assert state.buyers[buyer] <= before.buyer_limit
                else:
                    assert result["status"] == REJECTED and result["region"] is None
                    assert state.reservations == before.reservations
                    assert state.history[order_id] == f"REJECTED:{result['reason']}"
                    assert [r.to_list() for r in state.regions.values()] == [r.to_list() for r in before.regions.values()]
            else:
                assert result is None
                if kind == "SHIP" and held is not None:
                    shipped_by_buyer[held.buyer] += held.qty
                    assert state.regions[held.region].shipped == before.regions[held.region].shipped + held.qty
                    assert state.history[order_id].startswith("SHIPPED:")
                    # units leave the warehouses; what no count covered is recorded as a shortfall
                    on_hand = sum(state.warehouses.values()) - state.ship_shortfall
                    assert on_hand == sum(before.warehouses.values()) - before.ship_shortfall - held.qty
                if kind == "RELEASE" and held is not None:
                    assert order_id not in state.reservations
                    assert state.available == before.available + held.qty  # reactions only move free units
                if kind == "COMMIT" and held is not None:
                    assert state.reservations[order_id].paid
        if state is not None:
            check_invariants(state, catalog, shipped_by_buyer)


def test_the_random_stream_helpers_build_valid_requests():
    state, _, _ = apply_command(None, make_command("c", {"type": "SET_STOCK", "total": 10}, T0), CATALOG, T0)
    state, result, _ = apply_line_request(state, line_request("o1", 2), CATALOG, T0)
    assert result["status"] == LOCKED
    check_invariants(state, CATALOG, {})
    assert expected_replay(state, "o1") == (LOCKED, None) and expected_replay(state, "o2") is None


# -- the desk and the stock side together ---------------------------------------------------------------

SKUS = ["A", "B", "C"]

order_strategy = st.fixed_dictionaries({
    "lines": st.lists(st.tuples(st.sampled_from(SKUS * 4 + ["Z"]), st.integers(1, 6)), min_size=1, max_size=4),
    "channel": st.sampled_from(CHANNELS),
    "ship_to_region": st.one_of(st.none(), st.sampled_from(REGIONS)),
    "buyer_id": st.sampled_from(["b1", "b2", "b3", "b4", "b5"]),
})


@settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalog=st.sampled_from([CATALOG, BUSY]),
       totals=st.lists(st.integers(0, 120), min_size=3, max_size=3),
       limit=st.sampled_from([None, None, None, 1, 4, 10]),
       specs=st.lists(order_strategy, min_size=1, max_size=12),
       lifecycle=st.lists(st.sampled_from([None, "PAID", "CANCELLED", "SHIPPED", "EXPIRE"]), min_size=12, max_size=12),
       data=st.data())
def test_orders_are_all_or_nothing_across_skus(catalog, totals, limit, specs, lifecycle, data):
    now = T0
    stock: dict[str, SkuState] = {}
    for sku, total in zip(SKUS, totals):
        cmd = inventory_command("SET_STOCK", f"set-{sku}", sku=sku, issued_at=now, total=total)
        stock[sku], _, _ = apply_command(None, cmd, catalog, now)
        if limit is not None:
            cmd = inventory_command("SET_PURCHASE_LIMIT", f"lim-{sku}", sku=sku, issued_at=now, buyer_limit=limit)
            stock[sku], _, _ = apply_command(stock[sku], cmd, catalog, now)
    records: dict[str, desk.OrderRecord] = {}
    decisions: dict[str, list[dict]] = defaultdict(list)
    # per-SKU request queues (a partition each), per-order result queues, and the orders topic
    requests: dict[str, deque] = defaultdict(deque)
    results: dict[str, deque] = defaultdict(deque)
    placed = deque(order_placed(*spec["lines"], order_id=f"o{n}", placed_at=now,
                                **{k: v for k, v in spec.items() if k != "lines"}) for n, spec in enumerate(specs))

    def send(step):
        for request in step.requests:
            requests[request["sku"]].append(request)
        for decision in step.decisions:
            decisions[decision["order_id"]].append(decision)

    def store(order_id, step):
        if step.record is None:
            records.pop(order_id, None)
        else:
            records[order_id] = step.record

    def deliver(queue_kind, key, redeliver):
        nonlocal now
        now += 1000
        queue = {"placed": placed, "request": requests.get(key), "result": results.get(key)}[queue_kind]
        message = queue[0] if redeliver else queue.popleft()
        if queue_kind == "placed":
            step = desk.on_order_placed(records.get(message["order_id"]), message, catalog, now)
            store(message["order_id"], step)
            send(step)
        elif queue_kind == "request":
            held = stock[key].reservations.get(message["order_id"]) if key in stock else None
            state, result, _ = apply_line_request(stock.get(key), message, catalog, now)
            if state is not None:
                stock[key] = state
                if message["action"] == "SHIP" and held is not None:
                    shipped_by_buyer[key][held.buyer] += held.qty
                check_invariants(state, catalog, shipped_by_buyer[key])
            if result is not None:
                results[result["order_id"]].append(result)
                if desk.decided_by_stock_keeper(result):  # as the lock_stock_lines agent does
                    decisions[result["order_id"]].append(desk.single_line_decision(result))
        else:
            step = desk.on_line_result(records.get(key), message, catalog, now)
            store(key, step)
            send(step)

    shipped_by_buyer: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def pending():
        keys = [("placed", None)] if placed else []
        keys += [("request", k) for k, q in requests.items() if q]
        keys += [("result", k) for k, q in results.items() if q]
        return keys

    redeliveries = [20]  # at most this many duplicates per run

    def drain():
        for _ in range(2000):
            keys = pending()
            if not keys:
                return
            key = data.draw(st.sampled_from(keys), label="next")
            redeliver = False
            if redeliveries[0] and data.draw(st.integers(0, 9), label="redeliver") == 9:
                redeliveries[0] -= 1
                redeliver = True
            deliver(key[0], key[1], redeliver)
        raise AssertionError("messages keep coming")

    drain()
    for record in records.values():  # every order was decided
        assert record.status != desk.PENDING and record.decision is not None
    # the lifecycle on some of them, again in random interleavings
    for n, kind in enumerate(lifecycle[:len(specs)]):
        order_id = f"o{n}"
        if kind is None or order_id not in records:
            continue
        if kind == "EXPIRE":
            step = desk.on_timer(records[order_id], {"kind": desk.EXPIRE}, catalog,
                                 (records[order_id].expires_at or now) + 1)
        else:
            event = order_event(kind, f"e{n}", order_id, occurred_at=now)
            step = desk.on_order_event(records[order_id], event, catalog, now)
        store(order_id, step)
        send(step)
    drain()

    for order_id, record in records.items():
        note(f"order {record.status} {record.reason or ''} ({len(record.skus)} SKUs)")
        held = {sku: state.reservations.get(order_id) for sku, state in stock.items()}
        if record.status in (REJECTED, RELEASED, SHIPPED):
            assert not any(held.values()), (order_id, record.status, held)
        else:
            assert record.status in desk.HOLDING
            for sku, qty in record.skus.items():
                assert held[sku] is not None and held[sku].qty == qty, (order_id, sku)
                assert held[sku].paid == (record.status == desk.PAID)
            assert set(record.skus) == {s for s, h in held.items() if h is not None}
        if record.status == SHIPPED:
            assert all(stock[sku].history[order_id].startswith("SHIPPED") for sku in record.skus)
        assert decisions[order_id] and decisions[order_id][-1]["status"] in (LOCKED, REJECTED, RELEASED)
        if record.status == REJECTED:
            assert all(d["status"] == REJECTED for d in decisions[order_id])
    # nothing is held for an order that is not holding it
    holders = {o for o, r in records.items() if r.status in desk.HOLDING}
    for state in stock.values():
        assert set(state.reservations) <= holders
