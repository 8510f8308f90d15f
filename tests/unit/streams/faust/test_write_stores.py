"""The agents write a batch's table values and the persisted changelog offset to RocksDB in one
write batch per partition (streams/tables.py ``write_stores``), in the form Faust reads back."""

from __future__ import annotations

from types import SimpleNamespace

import rocksdict
from faust.stores.rocksdb import Store

from streams.tables import write_stores


class Stores:
    """Faust's RocksDB store as write_stores uses it: raw-mode databases, one per partition."""

    offset_key = Store.offset_key

    def __init__(self, root) -> None:
        self.root, self.dbs = root, {}

    def _db_for_partition(self, partition: int) -> rocksdict.Rdict:
        if partition not in self.dbs:
            self.dbs[partition] = rocksdict.Rdict(str(self.root / f"p{partition}"), options=rocksdict.Options(raw_mode=True))
        return self.dbs[partition]


def test_values_deletions_and_the_offset_land_in_their_partitions_store(tmp_path):
    table = SimpleNamespace(data=Stores(tmp_path))
    table.data._db_for_partition(1)[b'"gone"'] = b"{}"
    write_stores(table, {0: [(b'"a"', b'{"n":1}')], 1: [(b'"b"', b'{"n":2}'), (b'"gone"', None)]}, {0: 41, 1: 7})
    p0, p1 = table.data.dbs[0], table.data.dbs[1]
    assert p0[b'"a"'] == b'{"n":1}' and p1[b'"b"'] == b'{"n":2}'
    assert p1.get(b'"gone"') is None and p0.get(b'"b"') is None
    # Faust's Store.persisted_offset reads int(db.get(offset_key)): recovery resumes after it.
    assert int(p0[Store.offset_key]) == 41 and int(p1[Store.offset_key]) == 7
    for db in table.data.dbs.values():
        db.close()
