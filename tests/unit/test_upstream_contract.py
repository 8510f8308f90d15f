"""The contract with Faust, mode, aiokafka and rocksdict internals (streams/upstream.py).

lockstock copies, overrides and reads private parts of its stream-processing stack. These tests
fail, naming what to re-review, as soon as an installed version or the upstream source of
anything lockstock depends on differs from what was reviewed. They never skip: an upgrade must
be re-reviewed, then the pins refreshed with ``python -m streams.upstream --print``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from streams import upstream
from streams.upstream import PINNED_VERSIONS, PINS, SUBCLASSES, Pin

ROOT = Path(__file__).resolve().parents[2]
REFRESH = "then refresh the pins with `python -m streams.upstream --print` (streams/upstream.py)"


def _entries(pins) -> str:
    return "\n".join(f"  - {pin.name} [{pin.kind}] used by {', '.join(pin.users)}: {pin.why}" for pin in pins)


@pytest.mark.parametrize("distribution", sorted(PINNED_VERSIONS))
def test_installed_version_is_the_reviewed_one(distribution):
    pinned, installed = PINNED_VERSIONS[distribution], upstream.installed_versions()[distribution]
    assert installed == pinned, (
        f"{distribution} is {installed or 'not installed'}, but lockstock's use of its internals was "
        f"reviewed against {pinned}. Re-review every entry of {distribution} in streams/upstream.py "
        f"against the new source:\n{_entries(upstream.pins_of(distribution))}\n{REFRESH}."
    )


def test_pyproject_pins_the_reviewed_versions():
    """pyproject.toml's exact pins and the register agree (a bump in one alone fails)."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    exact = {}
    for requirement in dependencies:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*==\s*([^\s;]+).*", requirement)
        if match:
            exact[match.group(1).lower()] = match.group(3)
    disagree = {d: (exact[d], v) for d, v in PINNED_VERSIONS.items() if d in exact and exact[d] != v}
    assert not disagree, (
        "pyproject.toml and streams/upstream.py PINNED_VERSIONS disagree "
        + ", ".join(f"{d}: pyproject {p}, reviewed {v}" for d, (p, v) in disagree.items())
        + f". Re-review that package's entries in streams/upstream.py, {REFRESH}."
    )
    for distribution in ("faust-streaming", "aiokafka", "rocksdict"):
        assert distribution in exact, f"pyproject.toml no longer pins {distribution} exactly (==); streams/upstream.py assumes it does"


def test_every_pinned_package_is_known():
    assert {pin.package for pin in PINS} <= set(PINNED_VERSIONS)
    names = [pin.name for pin in PINS]
    assert len(names) == len(set(names)), "a name is pinned twice in streams/upstream.py"
    for pin in PINS:
        assert pin.sources, f"{pin.name} pins no source"
        assert pin.kind in (upstream.OVERRIDDEN, upstream.COPIED, upstream.CALLED, upstream.READ,
                            upstream.WRITTEN, upstream.RELIED), f"{pin.name}: unknown kind {pin.kind!r}"
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in pin.sources.values()), f"{pin.name}: a hash is not a sha256"


@pytest.mark.parametrize("pin", PINS, ids=lambda pin: pin.name)
def test_pinned_name_resolves(pin: Pin):
    problems = upstream.resolution_problems(pin)
    assert not problems, (
        f"{pin.name} ({pin.kind}, {pin.package} {upstream.installed_versions()[pin.package]}) is no longer "
        f"what lockstock uses:\n" + "\n".join(f"  - {p}" for p in problems)
        + f"\n{upstream.describe(pin)}\nRe-review that lockstock code against the installed {pin.package}, {REFRESH}."
    )


@pytest.mark.parametrize("pin", PINS, ids=lambda pin: pin.name)
def test_pinned_upstream_source_is_unchanged(pin: Pin):
    changed = upstream.hash_problems(pin)
    assert not changed, (
        f"The upstream code behind {pin.name} ({pin.kind}, {pin.package} "
        f"{upstream.installed_versions()[pin.package]}) changed:\n"
        + "\n".join(f"  - {source}: sha256 {current}, pinned {pinned}" for source, pinned, current in changed)
        + f"\n{upstream.describe(pin)}\nRe-review that lockstock code against the new source "
        f"(inspect.getsource of each object above) and carry the change over, {REFRESH}."
    )


@pytest.mark.parametrize("pin", [pin for pin in PINS if pin.lockstock], ids=lambda pin: pin.name)
def test_lockstock_still_overrides_what_is_pinned(pin: Pin):
    problems = upstream.lockstock_problems(pin)
    assert not problems, (
        f"{pin.name} is pinned as {pin.kind} by {pin.lockstock}, but: {'; '.join(problems)}. "
        "Update its entry in streams/upstream.py (or drop it when lockstock no longer overrides it)."
    )


@pytest.mark.parametrize("mine, base", SUBCLASSES, ids=[mine for mine, _ in SUBCLASSES])
def test_every_override_of_an_upstream_class_is_pinned(mine, base):
    problems = upstream.subclass_problems(mine, base)
    assert not problems, (
        "\n".join(problems) + "\nAn override lockstock did not register, or an upstream name that now "
        "collides with one of lockstock's own: review it, and add a pin (kind overridden or copied, "
        "with lockstock= naming the override) or rename lockstock's method."
    )


def test_print_helper_lists_every_pin_with_its_current_hashes(capsys):
    """``python -m streams.upstream --print``: what an upgrade pastes back after its review."""
    assert upstream.main(["--print"]) == 0
    text = capsys.readouterr().out
    missing = [pin.name for pin in PINS if pin.name not in text or any(source not in text for source in pin.sources)]
    assert not missing, f"--print leaves out {missing}"


# -- behaviour of the compiled and the store-level code, which hashes alone cannot show ----------

def test_rocksdict_raw_mode_batches_and_byte_ordered_iteration(tmp_path):
    """What streams.tables (and the engine's store code) assume of rocksdict: raw-mode write
    batches of bytes, None from get for a missing key, and iteration in byte order from a key."""
    import rocksdict

    db = rocksdict.Rdict(str(tmp_path / "db"), options=rocksdict.Options(raw_mode=True))
    try:
        db.put(b"sku\x00b\x00gone", b"x")
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key in (b"sku\x00b\x00r2", b"sku\x00a", b"sku\x00b\x00r1", b"sku\x00c"):
            batch.put(key, key.upper())
        batch.delete(b"sku\x00b\x00gone")
        db.write(batch)
        assert db.get(b"sku\x00b\x00gone") is None and db.get(b"sku\x00a") == b"SKU\x00A"
        assert [k for k, _ in db.items(from_key=b"sku\x00b\x00")] == [b"sku\x00b\x00r1", b"sku\x00b\x00r2", b"sku\x00c"]
        it = db.iter()
        it.seek(b"sku\x00b\x00")
        seen = []
        while it.valid() and it.key().startswith(b"sku\x00b\x00"):
            seen.append((it.key(), it.value()))
            it.next()
        assert seen == [(b"sku\x00b\x00r1", b"SKU\x00B\x00R1"), (b"sku\x00b\x00r2", b"SKU\x00B\x00R2")]
        del it
    finally:
        db.close()


def test_faust_offset_key_sorts_after_lockstocks_keys():
    """streams.lines keeps heads (JSON strings, ``"``) and line records (JSON arrays, ``[``) in
    the table's database and stops its scans at Faust's own keys, which must sort after both."""
    from faust.stores.rocksdb import Store

    assert b'"' < b"[" < Store.offset_key[:1], f"Faust's offset_key {Store.offset_key!r} now sorts among lockstock's keys"


def test_faust_recovery_writes_changelog_bytes_as_they_are(tmp_path):
    """Faust's changelog recovery (Store.apply_changelog_batch) puts each record's raw key and
    value into its partition's database (None deletes) and the highest offset under offset_key:
    lockstock's own changelog records, composite keys included, come back byte for byte."""
    import rocksdict
    from faust.stores.rocksdb import Store
    from faust.types import TP

    dbs: dict[int, rocksdict.Rdict] = {}

    def db_for(partition: int) -> rocksdict.Rdict:
        if partition not in dbs:
            dbs[partition] = rocksdict.Rdict(str(tmp_path / f"p{partition}"), options=rocksdict.Options(raw_mode=True))
        return dbs[partition]

    store = SimpleNamespace(use_rocksdict=True, offset_key=Store.offset_key, _db_for_partition=db_for)
    store.set_persisted_offset = lambda tp, offset: Store.set_persisted_offset(store, tp, offset)

    def event(partition: int, offset: int, key: bytes, value: bytes | None):
        tp = TP("changelog", partition)
        return SimpleNamespace(message=SimpleNamespace(tp=tp, partition=partition, offset=offset, key=key, value=value))

    db_for(1).put(b'"s"\x00r\x00old', b"{}")
    composite = b'"sku-1"\x00res\x00order-9'
    try:
        Store.apply_changelog_batch(store, [
            event(0, 5, b'"sku-1"', b'{"seq":3}'), event(0, 6, composite, b'\x00raw\xff'),
            event(1, 2, b'"s"\x00r\x00old', None),
        ], to_key=None, to_value=None)
        assert dbs[0].get(composite) == b"\x00raw\xff" and dbs[0].get(b'"sku-1"') == b'{"seq":3}'
        assert dbs[1].get(b'"s"\x00r\x00old') is None
        assert Store.persisted_offset(store, TP("changelog", 0)) == 6 and int(dbs[1][Store.offset_key]) == 2
    finally:
        for db in dbs.values():
            db.close()
