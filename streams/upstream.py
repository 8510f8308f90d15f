"""Every Faust, mode, aiokafka and rocksdict internal lockstock depends on, pinned.

lockstock copies one Faust method (the consumer's drain loop), overrides several (recovery's end,
the table manager's recovery, the app's transport, the aiokafka consumer thread's end offsets),
reads private attributes (the consumer's offsets and partition sets, aiokafka's fetcher) and
writes Faust's RocksDB databases directly (``streams.tables``). None of that is a public API:
a new release may rename or change any of it without notice, and lockstock would keep running
on wrong assumptions. This module is the register of those dependencies:

- ``PINNED_VERSIONS``: the versions every entry was reviewed against;
- ``PINS``: one entry per upstream name: what kind of dependency it is, which lockstock modules
  rely on it and why, and the sha256 of the (normalised) source of the upstream code it depends
  on. For a private attribute set in ``__init__`` (not a class attribute) that is the source of
  the method(s) that set or read it, and the attribute's name must occur in each;
- ``SUBCLASSES``: lockstock's subclasses of upstream classes. Every name such a class defines
  that its upstream base also defines must be a pinned override here: a new override, or an
  upstream release that starts using one of lockstock's own method names, fails loudly.

tests/unit/test_upstream_contract.py checks all of it, so an upgrade fails and names what to
re-review. After re-reviewing the lockstock code named by each failing entry against the new
upstream source, refresh the pins with ``python -m streams.upstream --print`` (it prints the
installed versions and every current hash in the form used below).

rocksdict is compiled (no Python source): its entries hash the documented signature and
docstring of each object instead, and the contract test also checks its behaviour directly.

Importing this module imports nothing but the standard library; upstream packages are imported
only when a pin is resolved.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
import re
import sys
from dataclasses import dataclass
from typing import Any, Mapping

# The distribution each top-level upstream package comes from.
DISTRIBUTIONS = {
    "faust": "faust-streaming",
    "mode": "mode-streaming",
    "aiokafka": "aiokafka",
    "rocksdict": "rocksdict",
}

# The versions every entry below was reviewed against. mode-streaming is not pinned in
# pyproject.toml (faust-streaming 0.15.3 asks for mode-streaming>=0.6.0), but lockstock relies
# on its Service internals, so a new mode release must be re-reviewed too.
PINNED_VERSIONS = {
    "faust-streaming": "0.15.3",
    "mode-streaming": "0.7.1",
    "aiokafka": "0.14.0",
    "rocksdict": "0.3.29",
}

# Kinds of dependency.
OVERRIDDEN = "overridden method"  # lockstock's subclass replaces it
COPIED = "copied method"  # lockstock carries a modified copy of its body
CALLED = "private method called"
READ = "private attribute read"
WRITTEN = "private attribute written"
RELIED = "behaviour relied on"  # lockstock is right only while it does what it does now (e.g. calls an override)


@dataclass(frozen=True, eq=False)
class Pin:
    name: str  # dotted upstream name
    kind: str
    users: tuple[str, ...]  # the lockstock modules that rely on it
    why: str  # one line: what lockstock assumes
    sources: Mapping[str, str]  # dotted upstream object -> sha256 of its normalised source
    lockstock: str | None = None  # the lockstock object that overrides or copies it

    @property
    def package(self) -> str:
        return DISTRIBUTIONS[self.name.split(".", 1)[0]]

    @property
    def attribute(self) -> str:
        return self.name.rsplit(".", 1)[1]


PINS: tuple[Pin, ...] = (
    # -- faust-streaming: the consumer's drain loop (streams/consumer.py) ------------------------
    Pin("faust.transport.consumer.Consumer._drain_messages", COPIED, ("streams.consumer",),
        "EagerDrain._drain_messages is this loop, changed only where a record is handed to the callback",
        {"faust.transport.consumer.Consumer._drain_messages": "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"},
        lockstock="streams.consumer.EagerDrain._drain_messages"),
    Pin("faust.transport.consumer.Fetcher._fetcher", RELIED, ("streams.consumer",),
        "the one caller of Consumer._drain_messages (as consumer._drain_messages(fetcher)): the eager drain is reached through it",
        {"faust.transport.consumer.Fetcher._fetcher": "68f894f0b577d8100419d6288088177609415aec9fc0ae82aec70b961a2e59b1"}),
    Pin("faust.transport.consumer.Consumer._read_offset", WRITTEN, ("streams.consumer", "streams.views", "lockstock.metrics.worker"),
        "the drain copy reads and sets each partition's read offset (a defaultdict of None); /consumer/ shows it; lag falls back to it before a commit",
        {"faust.transport.consumer.Consumer.__init__": "302410d59e6972d144e35ce91483b28783e01fd039f02a51f0b06c6d3953a001"}),
    Pin("faust.transport.consumer.Consumer._committed_offset", READ, ("streams.recovery", "streams.views", "lockstock.metrics.worker"),
        "perform_seek leaves partitions without a committed offset out (and maps 0 to None): SeekFirstRecovery's uncommitted() reads that; consumer lag is measured from it",
        {"faust.transport.consumer.Consumer.__init__": "302410d59e6972d144e35ce91483b28783e01fd039f02a51f0b06c6d3953a001",
         "faust.transport.consumer.Consumer.perform_seek": "0e8c130ff4b0afd82c0be9c5fd831316e10febc62c94032833911096e156d7c6"}),
    Pin("faust.transport.consumer.Consumer._commit_every", READ, ("streams.consumer",),
        "the drain copy commits every broker_commit_every acks, as Faust's loop does",
        {"faust.transport.consumer.Consumer.__init__": "302410d59e6972d144e35ce91483b28783e01fd039f02a51f0b06c6d3953a001"}),
    Pin("faust.transport.consumer.Consumer._n_acked", WRITTEN, ("streams.consumer",),
        "class attribute 0, counted up by ack(); the drain copy resets it when it commits",
        {"faust.transport.consumer.Consumer.ack": "5fcf41cf45153475de3790dc56fec1b83335956dc8b3bf7ff6bbb2b57627f03f"}),
    Pin("faust.transport.consumer.Consumer._add_gap", CALLED, ("streams.consumer",),
        "the drain copy records offset gaps (transaction markers) through it, as Faust's loop does",
        {"faust.transport.consumer.Consumer._add_gap": "4df2573ded7c1c2cde04dc6bde6d4480cb5875ef565256e56966b585ae39b1c1"}),
    Pin("faust.transport.consumer.Consumer._active_partitions", READ, ("streams.views",),
        "/consumer/ lists the partitions Faust fetches from (a set, reset by _reset_state)",
        {"faust.transport.consumer.Consumer._reset_state": "488b46f5c7f1d0b0cc8e15986f752ebe95a184ee5ba9371ae1f0053b35f6d1e7"}),
    Pin("faust.transport.consumer.Consumer._paused_partitions", READ, ("streams.views",),
        "/consumer/ lists the partitions Faust paused",
        {"faust.transport.consumer.Consumer._reset_state": "488b46f5c7f1d0b0cc8e15986f752ebe95a184ee5ba9371ae1f0053b35f6d1e7"}),
    Pin("faust.transport.consumer.Consumer._buffered_partitions", READ, ("streams.views",),
        "/consumer/ lists the partitions whose stream buffer is full",
        {"faust.transport.consumer.Consumer.__init__": "302410d59e6972d144e35ce91483b28783e01fd039f02a51f0b06c6d3953a001",
         "faust.transport.consumer.Consumer._reset_state": "488b46f5c7f1d0b0cc8e15986f752ebe95a184ee5ba9371ae1f0053b35f6d1e7"}),
    Pin("faust.transport.consumer.ThreadDelegateConsumer._thread", READ, ("streams.recovery", "streams.views"),
        "the consumer thread: recovery seeks never-committed partitions to their beginning through it, /consumer/ reads aiokafka's state",
        {"faust.transport.consumer.ThreadDelegateConsumer.__init__": "7072ae80eac1ff62b52ce9503a8fe7b6ff44fbb390b8f6beba7161b31b8bb483"}),
    # -- mode-streaming: what the drain copy and recovery assume of mode's Service ---------------
    Pin("mode.services.Service._stopped", READ, ("streams.consumer",),
        "the drain copy stops when the consumer's or the fetcher's _stopped event is set; _hand_over checks it before the eager path",
        {"mode.services.Service.__init__": "ab4d12a25b93044a2bd0314bc2ed748774bc6266a61f5473755248deb1675a49"}),
    Pin("mode.services.Service._crashed", READ, ("streams.consumer",),
        "_hand_over takes Faust's wait_first path once the consumer crashed, as wait_first would have ended on it",
        {"mode.services.Service.__init__": "ab4d12a25b93044a2bd0314bc2ed748774bc6266a61f5473755248deb1675a49"}),
    Pin("mode.services.Service.wait_first", RELIED, ("streams.consumer",),
        "_hand_over's eager path is equivalent only while wait_first races just its arguments and the _stopped/_crashed events",
        {"mode.services.Service.wait_first": "feade6a31f8a67897cf687c54c66f5f4535288050bbaac07249ce2063d36ae2e"}),
    Pin("mode.services.Service._init_subclass_tasks", RELIED, ("streams.consumer",),
        "mode keys a class's @Service.task set by module and qualname: eager_drain gives each generated class a name of its own",
        {"mode.services.Service._init_subclass_tasks": "00f556deddf901c4bd7f58debb3ac31fe994e0082961eff74471e6a7eb8acd04",
         "mode.services.Service._get_class_id": "8bc04f4aae29f30858e04986319801d688f9d8a30e5f10c413af098fe5d25b88"}),
    Pin("mode.services.Diag.set_flag", RELIED, ("streams.recovery",),
        "_fetch_cycle_passed reads diag.flags and diag.last_transition[CONSUMER_FETCHING], which set_flag stamps",
        {"mode.services.Diag.set_flag": "5c8ee447fbbafc6dcd89385e3116d9527a34c268183097d8a90147ebead3de03",
         "mode.services.Diag.__init__": "295b402943b7c46aceeb91d2b78ed5e7b103d97db70a50bcc62c5450376c5e17"}),
    # -- faust-streaming: table recovery (streams/recovery.py) ----------------------------------
    Pin("faust.tables.recovery.Recovery.on_recovery_completed", OVERRIDDEN, ("streams.recovery",),
        "SeekFirstRecovery re-implements it with the seek made before the stream partitions resume: carry any upstream change over",
        {"faust.tables.recovery.Recovery.on_recovery_completed": "6ef567acf072e46da3fccbccc6d662371f634f622c3d510972d5df81f70ae3ac"},
        lockstock="streams.recovery.SeekFirstRecovery.on_recovery_completed"),
    Pin("faust.tables.recovery.Recovery._resume_streams", OVERRIDDEN, ("streams.recovery",),
        "SeekFirstRecovery re-implements it (no tables to recover) with the seek before the resume: carry any upstream change over",
        {"faust.tables.recovery.Recovery._resume_streams": "d986a6710c1aca98f08c4c723fb3eadc5bf24576ad4eb9da3dd3eecedda2f24e"},
        lockstock="streams.recovery.SeekFirstRecovery._resume_streams"),
    Pin("faust.tables.recovery.Recovery._restart_recovery", RELIED, ("streams.recovery",),
        "calls _resume_streams and on_recovery_completed: the only way into both overrides",
        {"faust.tables.recovery.Recovery._restart_recovery": "6bd8a8558a2dffe4c60b8150f23d721baa6b3d658367f911a3ad2187e20efc6f"}),
    Pin("faust.tables.recovery.Recovery._set_recovery_ended", CALLED, ("streams.recovery",),
        "the on_recovery_completed override calls it as Faust's does",
        {"faust.tables.recovery.Recovery._set_recovery_ended": "84badf3f2cfe0d0206c632a08818f7c89f21c80358e9fba27535f1089761198f"}),
    Pin("faust.tables.recovery.Recovery._wait", CALLED, ("streams.recovery",),
        "the seeks wait through it: ServiceStopped / RebalanceAgain when recovery stops or restarts meanwhile",
        {"faust.tables.recovery.Recovery._wait": "ec7429b70176f8c688545780fdd6751714a1fa2ed247a9c0236adf9c99f16a53"}),
    Pin("faust.tables.recovery.Recovery._is_changelog_tp", CALLED, ("streams.recovery",),
        "tells stream partitions (to seek and resume) from changelog partitions",
        {"faust.tables.recovery.Recovery._is_changelog_tp": "453e8762c530ad44bfe4fda7a4baa3d35d1f34a4499f573742bb5c0a774f91e5"}),
    Pin("faust.tables.manager.TableManager.recovery", OVERRIDDEN, ("streams.recovery",),
        "SeekFirstTableManager.recovery builds SeekFirstRecovery exactly as Faust builds Recovery",
        {"faust.tables.manager.TableManager.recovery": "f0bf5de78b4c3d235c3554010480f407010ccb7c481c68852a985542b952df32"},
        lockstock="streams.recovery.SeekFirstTableManager.recovery"),
    Pin("faust.tables.manager.TableManager._recovery", WRITTEN, ("streams.recovery",),
        "the recovery property caches its Recovery there (class attribute None); on_stop stops it",
        {"faust.tables.manager.TableManager.recovery": "f0bf5de78b4c3d235c3554010480f407010ccb7c481c68852a985542b952df32",
         "faust.tables.manager.TableManager.on_stop": "351be149c0360de5ca05aebaca2317544ee0b5296c38816943fae9dac3745770"}),
    Pin("faust.app.base.App._fetcher", READ, ("streams.recovery",),
        "the fetcher service (cached property): the resume makes sure it runs (maybe_start), as Faust's does",
        {"faust.app.base.App._fetcher": "2ee3393e3555711e673a8518d767e5c7c0925bc32600e5fb67d22a3b0c954dab"}),
    # -- faust-streaming: the app's transport (streams/app.py) ----------------------------------
    Pin("faust.app.base.App._new_transport", OVERRIDDEN, ("streams.app",),
        "LockstockApp builds the same transport wrapped by eager_transport",
        {"faust.app.base.App._new_transport": "42db531312dd776fc3937154a32f19eeb9ad7d4ebc2722a92d081a2d271baea1"},
        lockstock="streams.app.LockstockApp._new_transport"),
    Pin("faust.app.base.App.transport", RELIED, ("streams.app",),
        "the property through which _new_transport is called (once, lazily)",
        {"faust.app.base.App.transport": "faf137f34d512f4e9415691c471d3f14e7d29f7cf31a63b8ccb3352e4bfa2fb4"}),
    # -- faust-streaming: the embedded broker profile (lockstock/broker/profile.py) -------------
    Pin("faust.transport.drivers.aiokafka.Consumer._new_consumer_thread", OVERRIDDEN, ("lockstock.broker.profile",),
        "EmbeddedConsumer builds EmbeddedConsumerThread with the same arguments",
        {"faust.transport.drivers.aiokafka.Consumer._new_consumer_thread": "0870ec53dea75083995e3565c0f0a25a1c63ecceaeb238e92e2585e3623af5a9"},
        lockstock="lockstock.broker.profile.EmbeddedTransport.Consumer._new_consumer_thread"),
    Pin("faust.transport.consumer.ThreadDelegateConsumer.__init__", RELIED, ("lockstock.broker.profile",),
        "calls _new_consumer_thread once and keeps the thread as _thread",
        {"faust.transport.consumer.ThreadDelegateConsumer.__init__": "7072ae80eac1ff62b52ce9503a8fe7b6ff44fbb390b8f6beba7161b31b8bb483"}),
    Pin("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._create_worker_consumer", OVERRIDDEN, ("lockstock.broker.profile",),
        "EmbeddedConsumerThread takes the AIOKafkaConsumer it builds and lowers its fetch wait (Faust hard-codes 1500 ms)",
        {"faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._create_worker_consumer": "c2701bfc3e6f6cad95c2be36d6a255a86e2c57d18d36cc1082b5fb5c482d99d7"}),
    Pin("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._create_consumer", RELIED, ("lockstock.broker.profile",),
        "the caller of _create_worker_consumer (for a worker, not a client-only app)",
        {"faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._create_consumer": "a4dc6ba0681a298c05d60994890984fe35edee17dea101f8071da9456700c238"}),
    Pin("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._highwaters", OVERRIDDEN, ("lockstock.broker.profile",),
        "EmbeddedConsumerThread corrects the end offsets it returns (tansu's ListOffsets bug) unless in a transaction",
        {"faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._highwaters": "a7f4f97d9f32aca2777713e22671d70eae4b3ae51541bb09a90448ce83acefce"}),
    Pin("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread.highwaters", RELIED, ("lockstock.broker.profile",),
        "recovery's highwaters go through _highwaters on the consumer thread: the override is reached through it",
        {"faust.transport.drivers.aiokafka.AIOKafkaConsumerThread.highwaters": "b49ed48ec1731816169d552bc5b11d3449d4906a7250a484220ae364386d4d65"}),
    Pin("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._ensure_consumer", CALLED, ("streams.views",),
        "/consumer/ gets the running AIOKafkaConsumer from it (ConsumerNotStarted before)",
        {"faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._ensure_consumer": "ff4a4c693b7ec63f4a76dfb61c419380bef70dd32383fe38ebcfcc27091605a6"}),
    Pin("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread.seek_to_beginning", RELIED, ("streams.recovery",),
        "called on the private _thread with aiokafka TopicPartitions; runs the seek on the consumer thread",
        {"faust.transport.drivers.aiokafka.AIOKafkaConsumerThread.seek_to_beginning": "bd4250b8d1e76d339a99ceff690c9d7a176f32a6da6cdfb9188c4d4885cfcf87"}),
    # -- faust-streaming: the RocksDB store (streams/tables.py; the engine's store code next) ---
    Pin("faust.stores.rocksdb.Store._db_for_partition", CALLED, ("streams.tables", "streams.transaction"),
        "the partition's rocksdict.Rdict, opened on first use: lockstock reads, writes (and the engine will iterate) it directly",
        {"faust.stores.rocksdb.Store._db_for_partition": "cb7e67d5f9efc4bced7b7ab09a55fe717c352daad5b693594e3f7ca52a98787f",
         "faust.stores.rocksdb.Store._open_for_partition": "1dc4e0113d67379dd61c0a396fa92636577d5fc6be60d4312253fa566080377b"}),
    Pin("faust.stores.rocksdb.Store.offset_key", RELIED, ("streams.tables", "streams.transaction", "streams.lines"),
        "the persisted changelog offset, str(offset).encode(), read back with int(); it sorts after lockstock's head and line keys",
        {"faust.stores.rocksdb.Store.offset_key": "54043474f4354d6336e18443a52ca161fe784addeaa4a7563b6788e8a1fd1e47",
         "faust.stores.rocksdb.Store.persisted_offset": "6f2e502fb86043a1cf0adca5c2fffb197579db01b31dbba3b0415aaacc35a2ed",
         "faust.stores.rocksdb.Store.set_persisted_offset": "b4c811926678346ebb8c40486dbc46d0fbac2bbeaa592384bd955112556acf45"}),
    Pin("faust.stores.rocksdb.Store._dbs_for_actives", CALLED, ("streams.tables",),
        "heads() walks the databases of this worker's active partitions (only those Faust has opened) for the SKU heads",
        {"faust.stores.rocksdb.Store._dbs_for_actives": "28ffca271cde5b062244446850fabb3a1fae579e4340b9a35102b7df98b1c1e6"}),
    Pin("faust.stores.rocksdb.Store.apply_changelog_batch", RELIED, ("streams.tables", "streams.agents", "streams.transaction"),
        "recovery writes each changelog record's raw key/value bytes (None deletes) into its partition's database: lockstock's own changelog records, composite keys too, come back byte for byte",
        {"faust.stores.rocksdb.Store.apply_changelog_batch": "ea3344d369fc4ab5e3cdace30565691136035a463acb7b2551fdc0b8af71643b"}),
    Pin("faust.stores.rocksdb.Store.use_rocksdict", RELIED, ("streams.tables",),
        "streams.tables writes rocksdict.WriteBatch objects into the store's databases: valid only while Faust picks the rocksdict driver",
        {"faust.stores.rocksdb.Store.__init__": "c7c0fa2989e8ab4a4349ff29df8258471624a160cb549e6735c367d9b2fefd19"}),
    Pin("faust.stores.rocksdb.RocksDBOptions.as_options", RELIED, ("streams.tables",),
        "Faust opens every database with Options(raw_mode=True): lockstock's WriteBatch(raw_mode=True) and raw byte reads must match",
        {"faust.stores.rocksdb.RocksDBOptions.as_options": "d2a1bea17736d2eb2f8d2da592ef843f31bd9583b17b3fcbb2ebd84c15051660",
         "faust.stores.rocksdb.RocksDBOptions.open": "ff87e92d69e2f487e2657c1df266543f4733d4acad3dd18fa5c86f239d8e340d"}),
    Pin("faust.stores.rocksdb.Store._visible_items", RELIED, ("streams.agents", "streams.views", "streams.tables"),
        "table.items()/keys()/len() take every raw key but offset_key for a table key: composite line keys show up there (hence streams.tables.heads)",
        {"faust.stores.rocksdb.Store._visible_items": "545dc16a2b25e4a4c6ce4483ba808b7121b733ac32ecbdcbba78348248f816c2",
         "faust.stores.rocksdb.Store._visible_keys": "28b3c24a6884cbcd69ee040fa72fb9eb9808dc08cf6c3fdbb29715d33e9830d3"}),
    # -- faust-streaming: the agents' batches (streams/take.py, streams/pipeline.py) -----------
    Pin("faust.streams.Stream._py_aiter", COPIED, ("streams.take",),
        "take_batches does per event what this iterator (and its compiled twin, faust/_cython/streams.pyx StreamIterator) does for an agent "
        "with no processors: skip and ack an event of an old generation or while flow is suspended; track the message as unacked "
        "(Consumer.track_message inlined) and call on_message_in; streams.take.take_batches carries that part",
        {"faust.streams.Stream._py_aiter": "3a48ee257a65435b482d51edb74f2993a67867949b1ef89b49fea893769e0614",
         "faust.transport.consumer.Consumer.track_message": "217d7f1399a4cd8e15a43a64ecf50413b9b738058e5433e057f0dc3927a3fc03"}),
    Pin("faust.transport.conductor.ConductorCompiler.build", RELIED, ("streams.take",),
        "the conductor takes one reference per subscribed channel (message.incref) and puts each event on the channel's queue "
        "(put_nowait_enhanced, or put when full) after flow control and the producer's buffer: take_batches reads that queue",
        {"faust.transport.conductor.ConductorCompiler.build": "837cf521368c1ee4b22c235a2b137f665eca03d0e3e01b5ddedb65232ee73bf2",
         "faust.topics.Topic.__aiter__": "838623ae001ec5d1cc42e4a0be92e3485144bc6ce5d3b15aca785f605ffe2dd1"}),
    Pin("faust.transport.consumer.Consumer._unacked_messages", WRITTEN, ("streams.take",),
        "the set of messages handed to a stream and not yet acknowledged (what wait_empty waits on): take_batches adds each event's message",
        {"faust.transport.consumer.Consumer.__init__": "302410d59e6972d144e35ce91483b28783e01fd039f02a51f0b06c6d3953a001",
         "faust.transport.consumer.Consumer.track_message": "217d7f1399a4cd8e15a43a64ecf50413b9b738058e5433e057f0dc3927a3fc03"}),
    Pin("faust.transport.conductor.Conductor._acking_topics", READ, ("streams.take",),
        "the topics whose messages are tracked and acknowledged (every agent topic): take_batches tracks only those, as the stream does",
        {"faust.transport.conductor.Conductor.__init__": "441bc3b1df592aa7de42538bbe499a8b43894f3a2319a325ff64200073aa64d3"}),
    Pin("faust.streams.Stream._on_message_in", READ, ("streams.take",),
        "the sensors' hook for a message a stream starts on: take_batches calls it as the stream iterator does",
        {"faust.streams.Stream.__init__": "8a6dea3405cd68e645c8727a471cd3c2289a6f12d743677b5879c426ed7d7d38"}),
    Pin("faust.types.tuples.Message.incref", RELIED, ("streams.pipeline",),
        "a message is acknowledged to the consumer only when its last reference goes (Message.ack -> ConsumerMessage.on_final_ack -> Consumer.ack): "
        "the conductor's reference is released by the batch's commit",
        {"faust.types.tuples.Message.incref": "78d34df830d3089b463d2bbc6e06892fa49b427f5b9340e0f69032e825ef7cbf",
         "faust.types.tuples.Message.ack": "4751b72c4ed84153a7b6c14fdfe41cc92e477b38a6c6089cb785532ef5771688",
         "faust.types.tuples.ConsumerMessage.on_final_ack": "45d670b6a8ac4bd07a3e5600c89358638415b7a2bf1d17c03c260cfc1b8a8e5a"}),
    Pin("faust.transport.consumer.Consumer._new_offset", RELIED, ("streams.pipeline",),
        "a partition's commit offset ends the first run of consecutive acknowledged offsets, without checking the run starts at the committed offset: "
        "the pipeline acknowledges batches in submission order, so no run starts past an offset still in flight",
        {"faust.transport.consumer.Consumer._new_offset": "1d2c7ea89a7ad4f1a216c1d51936e569162cd66bd56f889e13fd29c910b58eb0"}),
    Pin("faust.streams.Stream._on_message_out", READ, ("streams.pipeline", "streams.take"),
        "the sensors' hook Stream.ack calls for a message's last reference: the pipeline (and take_batches, for a skipped event) calls it when its release is the last",
        {"faust.streams.Stream.__init__": "8a6dea3405cd68e645c8727a471cd3c2289a6f12d743677b5879c426ed7d7d38",
         "faust.streams.Stream.ack": "32d7171a89b0931d806a87dc81dcba5673dd9702f8a6add8426e0e236b9e8fef"}),
    Pin("faust.transport.consumer.Consumer.wait_empty", RELIED, ("streams.pipeline",),
        "a rebalance (and a stop) waits until every message handed to a stream is acknowledged: so it waits for the commits in flight",
        {"faust.transport.consumer.Consumer.wait_empty": "e4662fe24f094819add590b2d75f233840e77823b432aea6504539768572102f",
         "faust.app.base.App._on_partitions_revoked": "d5c895bbe57dc73ae4d7f762f6fdc9fdd3abd02f9e05863ccfd8034082e5682f"}),
    # -- aiokafka ------------------------------------------------------------------------------
    Pin("aiokafka.consumer.consumer.AIOKafkaConsumer._fetch_max_wait_ms", WRITTEN, ("lockstock.broker.profile",),
        "set in __init__, read only when start() builds the Fetcher: the embedded profile overwrites it before start",
        {"aiokafka.consumer.consumer.AIOKafkaConsumer.__init__": "01506f316191f7c99c785bec915756d1560029a6fad75cba6f4da71e343a8163",
         "aiokafka.consumer.consumer.AIOKafkaConsumer.start": "2f1ba70443327538800d348e61042cdedd5a5e6306f40ebe1a06dddba7494c45"}),
    Pin("aiokafka.consumer.consumer.AIOKafkaConsumer._fetcher", READ, ("streams.views",),
        "/consumer/ reads the Fetcher that start() builds",
        {"aiokafka.consumer.consumer.AIOKafkaConsumer.__init__": "01506f316191f7c99c785bec915756d1560029a6fad75cba6f4da71e343a8163",
         "aiokafka.consumer.consumer.AIOKafkaConsumer.start": "2f1ba70443327538800d348e61042cdedd5a5e6306f40ebe1a06dddba7494c45"}),
    Pin("aiokafka.consumer.consumer.AIOKafkaConsumer._subscription", READ, ("streams.views",),
        "/consumer/ reads the assignment's per-partition state (subscription.assignment.state_value)",
        {"aiokafka.consumer.consumer.AIOKafkaConsumer.__init__": "01506f316191f7c99c785bec915756d1560029a6fad75cba6f4da71e343a8163"}),
    Pin("aiokafka.consumer.consumer.AIOKafkaConsumer.seek_to_committed", RELIED, ("streams.recovery",),
        "leaves a partition with no committed offset (or 0) where it is: SeekFirstRecovery seeks those to their beginning",
        {"aiokafka.consumer.consumer.AIOKafkaConsumer.seek_to_committed": "f6cd85c8b70a4ccf7e862de24f6c5d985038eed3e140990f000aa4b52eda8d72"}),
    Pin("aiokafka.consumer.subscription_state.TopicPartitionState._position", READ, ("streams.views",),
        "/consumer/ shows each partition's fetch position",
        {"aiokafka.consumer.subscription_state.TopicPartitionState.__init__": "f0b391da1b87af045ac4125de2c2ae928bb351157c2859d9e3586562e0edf7f7"}),
    Pin("aiokafka.consumer.fetcher.Fetcher._records", READ, ("streams.views",),
        "/consumer/ shows which partitions have fetched records pending (a dict keyed by partition)",
        {"aiokafka.consumer.fetcher.Fetcher.__init__": "bf21ecb7e0f210b7c90ddabf89b02ae088d97d93cd157cea11429d13737eea2a"}),
    Pin("aiokafka.consumer.fetcher.Fetcher._in_flight", READ, ("streams.views",),
        "/consumer/ shows the nodes with a fetch request in flight (a set)",
        {"aiokafka.consumer.fetcher.Fetcher.__init__": "bf21ecb7e0f210b7c90ddabf89b02ae088d97d93cd157cea11429d13737eea2a"}),
    # -- rocksdict (compiled: signature and docstring hashed; behaviour tested directly) -------
    Pin("rocksdict.WriteBatch", RELIED, ("streams.tables",),
        "WriteBatch(raw_mode=True) takes raw bytes keys and values, as Faust's raw-mode databases hold them",
        {"rocksdict.WriteBatch": "72357923df8de1c1a7029ff005f1813333f2ed834713b296af9eff0854f4ffdc"}),
    Pin("rocksdict.WriteBatch.put", RELIED, ("streams.tables",), "puts a raw key/value in the batch",
        {"rocksdict.WriteBatch.put": "b8bb009a3cb35c7e2426bff551d8a1ac5548c16361509ada8923fa0142fcf497"}),
    Pin("rocksdict.WriteBatch.delete", RELIED, ("streams.tables",), "deletes a raw key in the batch",
        {"rocksdict.WriteBatch.delete": "0f8604b8d4de17401cd0e338cef49e1c1aed315a88d26dc9bd55b2a58bfd87b1"}),
    Pin("rocksdict.Rdict.write", RELIED, ("streams.tables",), "applies a write batch atomically",
        {"rocksdict.Rdict.write": "6e61c39027ec147bed4f0c33dd118b4374a29b7d350063e25bfb8f3d5223e9dd"}),
    Pin("rocksdict.Rdict.get", RELIED, ("streams.tables",), "one raw lookup; None when absent",
        {"rocksdict.Rdict.get": "551d353eccab9ecb13d17a6dd2203340b28eb05d169b0951cabe77120847254e"}),
    Pin("rocksdict.Rdict.items", RELIED, ("streams.tables", "streams.lines"),
        "heads() and lines.scan() iterate from a key prefix with items(from_key=...), in byte order of raw keys",
        {"rocksdict.Rdict.items": "587a4f31c1b06737cab93e161c9641b43a09d0c80369305fa054e7c1280be0f0"}),
    Pin("rocksdict.Rdict.iter", RELIED, ("streams.engine",),
        "the engine's store code (planned) may seek a raw iterator to a key prefix and walk it (valid/key/value/next)",
        {"rocksdict.Rdict.iter": "ec1d9a5243c0381c3d8f41577deaffaeb711b3206adceb698e4f421998b43339",
         "rocksdict.RdictIter.seek": "b150ff0b1ff3865297be226f10020129397122b0a3458402d1ede567870c123c",
         "rocksdict.RdictIter.valid": "312d955d6e56fd2c20bfbc1781c808464198c7bee346ddd0451b21fc369f610a",
         "rocksdict.RdictIter.key": "2c69f50abbb176d33d1ad957e7ba8f3cdcf385538e47223469de68adf5530471",
         "rocksdict.RdictIter.value": "7d6ef33962683623ffb80cce660df0490b8b04aa39acf2e27c1036818f9578ad",
         "rocksdict.RdictIter.next": "fa9b925a7756598f862e0299ba0a1d61bfb6aded7a03299d2e66b1fb92027827"}),
)

# lockstock's subclasses of upstream classes: (lockstock class, upstream base). Every name the
# lockstock class defines that the upstream base also has must be a pinned override.
# EmbeddedConsumerThread (lockstock.broker.profile) is local to a function and cannot be named
# here; its two overrides are pinned above.
SUBCLASSES: tuple[tuple[str, str], ...] = (
    ("streams.consumer.EagerDrain", "faust.transport.drivers.aiokafka.Consumer"),
    ("streams.recovery.SeekFirstRecovery", "faust.tables.recovery.Recovery"),
    ("streams.recovery.SeekFirstTableManager", "faust.tables.manager.TableManager"),
    ("streams.app.LockstockApp", "faust.app.base.App"),
    ("lockstock.broker.profile.EmbeddedTransport", "faust.transport.drivers.aiokafka.Transport"),
    ("lockstock.broker.profile.EmbeddedTransport.Consumer", "faust.transport.drivers.aiokafka.Consumer"),
)
# Public class attributes Faust documents as the way to customise a transport.
EXTENSION_POINTS = frozenset({"Consumer", "Producer", "driver_version"})

_MISSING = object()


def installed_versions() -> dict[str, str | None]:
    """The installed version of each pinned distribution (None when not installed)."""
    versions: dict[str, str | None] = {}
    for distribution in PINNED_VERSIONS:
        try:
            versions[distribution] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[distribution] = None
    return versions


def resolve(dotted: str) -> Any:
    """The object a dotted name names: modules are imported, class members are read without
    running descriptors (a property gives the property). AttributeError when it does not exist."""
    parts = dotted.split(".")
    obj: Any = importlib.import_module(parts[0])
    path = parts[0]
    for part in parts[1:]:
        path = f"{path}.{part}"
        if inspect.ismodule(obj):
            value = getattr(obj, part, _MISSING)
            if value is _MISSING and hasattr(obj, "__path__"):
                try:
                    value = importlib.import_module(path)
                except ModuleNotFoundError as exc:
                    if exc.name != path:
                        raise
            if value is _MISSING:
                raise AttributeError(f"{path} does not exist")
            obj = value
        elif inspect.isclass(obj):
            try:
                obj = inspect.getattr_static(obj, part)
            except AttributeError:
                raise AttributeError(f"{path} does not exist") from None
        else:
            obj = getattr(obj, part)
    return obj


def unwrap(obj: Any) -> Any:
    """The function behind a descriptor: a property's getter, a cached property's function,
    mode's ``@Service.task``, a static or class method."""
    if isinstance(obj, property):
        return obj.fget
    if isinstance(obj, (staticmethod, classmethod)):
        return obj.__func__
    getter = getattr(obj, "_cached_property__get", None)  # mode.utils.objects.cached_property
    if getter is not None:
        return getter
    func = getattr(obj, "func", None)  # functools.cached_property
    if func is not None and type(obj).__name__ == "cached_property":
        return func
    if type(obj).__name__ == "ServiceTask" and type(obj).__module__ == "mode.services":
        return obj.fun
    return obj


def _compiled(obj: Any) -> bool:
    if inspect.isclass(obj):
        file = getattr(sys.modules.get(obj.__module__), "__file__", None) or ""
        return file.endswith((".so", ".pyd")) or obj.__module__ == "builtins"
    return inspect.isroutine(obj) and not (inspect.isfunction(obj) or inspect.ismethod(obj))


def source_text(obj: Any) -> str:
    """What a pin hashes: the source of Python code, the documented signature of compiled code,
    the repr of a constant."""
    obj = unwrap(obj)
    if isinstance(obj, (bytes, str, int, float, bool)):
        return repr(obj)
    if _compiled(obj):
        signature = getattr(obj, "__text_signature__", None) or ""
        return f"{obj.__qualname__}{signature}\n{obj.__doc__ or ''}"
    if inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isclass(obj):
        return inspect.getsource(obj)
    raise TypeError(f"cannot pin {obj!r}: not a function, class or constant")


def normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n") + "\n"


def source_hash(dotted: str) -> str:
    """sha256 of the normalised source of an upstream object (trailing whitespace stripped)."""
    return hashlib.sha256(normalise(source_text(resolve(dotted))).encode()).hexdigest()


def mentions(text: str, attribute: str) -> bool:
    return re.search(rf"\.{re.escape(attribute)}\b", text) is not None


def pins_of(distribution: str) -> list[Pin]:
    return [pin for pin in PINS if pin.package == distribution]


def resolution_problems(pin: Pin) -> list[str]:
    """Why the pinned name no longer names what lockstock uses (empty when it does)."""
    problems = []
    owner, attribute = pin.name.rsplit(".", 1)
    try:
        resolve(owner)
    except Exception as exc:
        return [f"{owner} does not resolve ({type(exc).__name__}: {exc})"]
    try:
        resolve(pin.name)
        static = True
    except AttributeError:
        static = False
    for source in pin.sources:
        try:
            text = source_text(resolve(source))
        except Exception as exc:
            problems.append(f"{source} does not resolve ({type(exc).__name__}: {exc})")
            continue
        # An attribute set in __init__ exists only on instances: the code that sets or reads it
        # must still name it. An attribute lockstock reads or writes must occur in every source.
        if source != pin.name and (not static or pin.kind in (READ, WRITTEN)) and not mentions(text, attribute):
            problems.append(f"{source} no longer mentions .{attribute}")
    if not static and not pin.sources:
        problems.append(f"{pin.name} does not resolve and no source names it")
    return problems


def hash_problems(pin: Pin) -> list[tuple[str, str, str]]:
    """(upstream object, pinned hash, current hash) for each source that changed."""
    changed = []
    for source, pinned in pin.sources.items():
        try:
            current = source_hash(source)
        except Exception as exc:
            current = f"<unresolvable: {type(exc).__name__}: {exc}>"
        if current != pinned:
            changed.append((source, pinned, current))
    return changed


def lockstock_problems(pin: Pin) -> list[str]:
    """Why the lockstock object a pin names no longer overrides or copies it (empty when it does)."""
    if pin.lockstock is None:
        return []
    owner, name = pin.lockstock.rsplit(".", 1)
    try:
        cls = resolve(owner)
    except Exception as exc:
        return [f"{owner} does not resolve ({type(exc).__name__}: {exc})"]
    if not inspect.isclass(cls) or name not in vars(cls):
        return [f"{owner} no longer defines {name}"]
    return []


def subclass_problems(mine: str, base: str) -> list[str]:
    """Names lockstock's class ``mine`` defines that its upstream ``base`` also has, but that
    no pin registers as overridden or copied: a new override nobody pinned, or an upstream
    release that started using one of lockstock's own names (a silent override)."""
    own_class, upstream = resolve(mine), resolve(base)
    # What any subclass gets without writing it (mode's __init_subclass__, abc).
    automatic = set(vars(type("Probe", (upstream,), {"__module__": __name__})))
    registered = {pin.lockstock.rsplit(".", 1)[1] for pin in PINS
                  if pin.lockstock and pin.lockstock.rsplit(".", 1)[0] == mine}
    problems = []
    for name in sorted(vars(own_class)):
        if (name.startswith("__") and name.endswith("__")) or name in automatic or name in EXTENSION_POINTS:
            continue
        if hasattr(upstream, name) and name not in registered:
            problems.append(f"{mine}.{name} overrides {base}.{name}, which no pin in streams.upstream registers")
    return problems


def describe(pin: Pin) -> str:
    """Who relies on a pin and what to re-review, for failure messages."""
    lines = [f"  relied on by: {', '.join(pin.users)}"]
    if pin.lockstock:
        lines.append(f"  lockstock code: {pin.lockstock}")
    lines.append(f"  what lockstock assumes: {pin.why}")
    return "\n".join(lines)


def report() -> str:
    """The installed versions and every current hash, in the form ``PINS`` uses, with the
    entries whose hashes changed marked: paste after re-reviewing what they name."""
    out = ["PINNED_VERSIONS = {"]
    installed = installed_versions()
    for distribution, pinned in PINNED_VERSIONS.items():
        mark = "" if installed[distribution] == pinned else f"  # CHANGED: pinned {pinned}"
        out.append(f'    "{distribution}": "{installed[distribution]}",{mark}')
    out.append("}")
    for pin in PINS:
        out.append(f"\n{pin.name}  [{pin.kind}; {pin.package}; {', '.join(pin.users)}]")
        for problem in resolution_problems(pin):
            out.append(f"    # PROBLEM: {problem}")
        sources = []
        for source, pinned in pin.sources.items():
            try:
                current = source_hash(source)
            except Exception as exc:
                out.append(f"    # {source}: cannot hash ({type(exc).__name__}: {exc})")
                continue
            mark = "" if current == pinned else "  # CHANGED"
            sources.append(f'"{source}": "{current}",{mark}')
        out.extend(f"    {line}" for line in sources)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv not in ([], ["--print"]):
        print("usage: python -m streams.upstream [--print]", file=sys.stderr)
        return 2
    print(report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
