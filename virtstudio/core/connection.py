"""One HostConnection per libvirt URI: the only place that talks to libvirt.

A connection owns a worker thread that runs every blocking call for its host
in order: opening, the initial inventory, refreshes triggered by libvirt
events, and the periodic bulk statistics.  Callbacks from libvirt's event
thread only hand work to that worker.  Results leave through batch signals
(lists of entities), so a view can apply them as fine-grained inserts,
removals and changes.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import libvirt

from virtstudio.core import uri as uri_mod
from virtstudio.core.demo import validate_fixture
from virtstudio.core.entities import Domain, Network, StoragePool, Volume
from virtstudio.core.errors import UserError, VirtStudioError, describe
from virtstudio.core.events import ensure_event_loop
from virtstudio.core.io_errors import paused_on_io_error, read_disk_errors
from virtstudio.core.signal import Signal
from virtstudio.core.stats import StatsTracker
from virtstudio.core.worker import Worker

log = logging.getLogger(__name__)
T = TypeVar("T")

# Emitting in chunks lets the GUI thread apply a large inventory in several
# short steps instead of one long stall.
POPULATE_CHUNK = 100
BACKOFF_STEPS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)

_CLOSE_REASONS = {
    libvirt.VIR_CONNECT_CLOSE_REASON_ERROR: "an I/O error on the connection",
    libvirt.VIR_CONNECT_CLOSE_REASON_EOF: "the daemon closed the connection (it may have stopped)",
    libvirt.VIR_CONNECT_CLOSE_REASON_KEEPALIVE: "the host stopped answering keepalive messages",
    libvirt.VIR_CONNECT_CLOSE_REASON_CLIENT: "the connection was closed",
}


def _unless_unsupported(list_all: Callable[[int], list[Any]]) -> list[Any]:
    """The listing, or nothing when the daemon runs without that driver (e.g. LXC only)."""
    try:
        return list_all(0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
            return []
        raise


class ConnectionState(enum.Enum):
    DISCONNECTED = "Disconnected"
    CONNECTING = "Connecting"
    CONNECTED = "Connected"
    LOST = "Connection lost"
    FAILED = "Failed"


class HostConnection:
    def __init__(
        self,
        uri: str,
        *,
        name: str | None = None,
        is_demo: bool = False,
        stats_interval: float = 1.0,
        reconnect: bool = True,
        backoff: Iterable[float] = BACKOFF_STEPS,
    ) -> None:
        self.uri = uri
        self.is_demo = is_demo
        self.name = name or uri_mod.display_name(uri)
        self.stats_interval = stats_interval
        self.reconnect_enabled = reconnect
        self._backoff = tuple(backoff)
        self._attempt = 0
        self.state = ConnectionState.DISCONNECTED
        self.error: UserError | None = None
        self.retry_at: float | None = None
        self.hypervisor = ""
        self.hostname = ""
        self.libvirt_version = ""
        self.host_uuid = ""  # from the capabilities: what migration compares hosts by

        self.domains: dict[str, Domain] = {}
        self.pools: dict[str, StoragePool] = {}
        self.networks: dict[str, Network] = {}
        # True once every entity of the open connection has been read and emitted.
        self.is_populated = False

        self.state_changed = Signal("state_changed")
        self.domains_added = Signal("domains_added")
        self.domains_removed = Signal("domains_removed")
        self.domains_changed = Signal("domains_changed")
        self.stats_updated = Signal("stats_updated")
        self.pools_added = Signal("pools_added")
        self.pools_removed = Signal("pools_removed")
        self.pools_changed = Signal("pools_changed")
        self.networks_added = Signal("networks_added")
        self.networks_removed = Signal("networks_removed")
        self.networks_changed = Signal("networks_changed")
        self.populated = Signal("populated")
        # (host, uuid, VIR_DOMAIN_EVENT_*) for each lifecycle event, after the refresh.
        self.domain_lifecycle = Signal("domain_lifecycle")
        # (host, [Domain]) for machines that just paused on a disk I/O error (disk full).
        self.domains_io_paused = Signal("domains_io_paused")

        self._conn: libvirt.virConnect | None = None
        # id(conn) -> [conn, blocks holding it, close it when the last lets go]
        self._held: dict[int, list[Any]] = {}
        self._held_lock = threading.Lock()
        self._generation = 0
        self._callback_ids: list[tuple[str, int]] = []
        self._stats = StatsTracker()
        self._worker = Worker(f"libvirt {uri}")
        self._closed = False

    # ---- public API, callable from any thread -------------------------------

    @property
    def worker_thread(self) -> threading.Thread:
        return self._worker.thread

    @property
    def virconn(self) -> libvirt.virConnect:
        """The open libvirt connection, for calls made off the GUI thread."""
        conn = self._conn
        if conn is None or self.state is not ConnectionState.CONNECTED:
            raise VirtStudioError(f"{self.name} is not connected.")
        return conn

    @contextmanager
    def held(self) -> Iterator[libvirt.virConnect]:
        """The open connection, kept open for the block even if the daemon goes away.

        A lost connection is closed on the worker; a job inside a long call (a
        migration drives both ends' connections) would then hand libvirt a
        closed, freed connection and crash.  While held, the close waits for the
        block to end, and the job's calls fail with libvirt's own "lost" error."""
        with self._held_lock:
            conn = self.virconn
            entry = self._held.setdefault(id(conn), [conn, 0, False])
            entry[1] += 1
        try:
            yield conn
        finally:
            with self._held_lock:
                entry[1] -= 1
                close = entry[1] == 0 and entry[2]
                if entry[1] == 0:
                    del self._held[id(conn)]
            if close:
                try:
                    conn.close()
                except libvirt.libvirtError:
                    pass

    def open(self) -> Future[None]:
        self._closed = False
        return self._worker.submit(self._connect)

    def close(self) -> Future[None]:
        """Disconnect on the user's request; no reconnect follows."""
        self._closed = True
        return self._worker.submit(self._disconnect, None, ConnectionState.DISCONNECTED)

    def reconnect_now(self) -> Future[None]:
        self._closed = False
        return self._worker.submit(self._connect)

    def shutdown(self, wait: bool = True) -> None:
        """Close and stop the worker; the object is unusable afterwards.

        With ``wait=False`` this returns at once, so a host whose daemon hangs
        cannot freeze the caller.
        """
        self._closed = True
        done = self._worker.submit(self._disconnect, None, ConnectionState.DISCONNECTED)
        self._worker.submit(self._worker.stop, False)
        if wait:
            try:
                done.result(timeout=10)
            except Exception:
                log.debug("closing %s on shutdown failed", self.uri, exc_info=True)
            self._worker.stop()

    def call(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(virConnect, *args)`` on this host's worker thread."""
        return self._worker.submit(lambda: fn(self.virconn, *args))

    def refresh_domain(self, uuid: str) -> Future[None]:
        gen = self._generation
        return self._worker.submit(self._refresh_domains, gen, [uuid])

    def refresh_network(self, uuid: str) -> Future[None]:
        """Read one network again (autostart changes send no event)."""
        return self._worker.submit(self._refresh_network, self._generation, uuid)

    def refresh_pool(self, uuid: str) -> Future[None]:
        """Read one pool again (changes such as autostart or build send no event)."""
        gen = self._generation
        return self._worker.submit(self._refresh_pool, gen, uuid)

    def find_domain_by_name(self, name: str) -> Domain | None:
        for dom in list(self.domains.values()):
            if dom.name == name:
                return dom
        return None

    # ---- worker thread ---------------------------------------------------------

    def _set_state(self, state: ConnectionState, error: UserError | None = None,
                   retry_at: float | None = None) -> None:
        self.state = state
        self.error = error
        self.retry_at = retry_at
        self.state_changed.emit(self)

    def _connect(self) -> None:
        if self._closed or self.state in (ConnectionState.CONNECTED, ConnectionState.CONNECTING):
            return
        ensure_event_loop()
        self._set_state(ConnectionState.CONNECTING)
        try:
            parsed = uri_mod.parse(self.uri)
            if parsed.is_test and parsed.path != "/default" and not parsed.transport:
                # libvirt's own message for a broken fixture is terse; say what is wrong.
                validate_fixture(Path(parsed.path))
            conn = libvirt.open(self.uri)
        except Exception as exc:
            self._fail(describe(exc))
            return
        self._generation += 1
        gen = self._generation
        self._conn = conn
        try:
            self._register_callbacks(conn, gen)
            if uri_mod.parse(self.uri).is_remote:
                conn.setKeepAlive(5, 3)
            self._read_host_facts(conn)
            self._attempt = 0
            self._set_state(ConnectionState.CONNECTED)
            self._populate(conn)
        except Exception as exc:
            self._drop(describe(exc))
            return
        self.is_populated = True
        self.populated.emit(self)
        if self.stats_interval > 0:
            self._worker.call_later(self.stats_interval, self._stats_tick, gen)

    def _fail(self, error: UserError) -> None:
        """A connect attempt failed: show why, and try again later if that may help."""
        # The test driver reads a local file: trying it again gives the same answer.
        retry = (self.reconnect_enabled and not self._closed
                 and not self.uri.startswith("test:"))
        if retry:
            delay = self._backoff[min(self._attempt, len(self._backoff) - 1)]
            self._attempt += 1
            retry_at = time.time() + delay
            self._set_state(ConnectionState.LOST, error, retry_at)
            self._worker.call_later(delay, self._retry)
        else:
            self._set_state(ConnectionState.FAILED, error)

    def _retry(self) -> None:
        if not self._closed and self.state in (ConnectionState.LOST, ConnectionState.FAILED):
            self._connect()

    def _drop(self, error: UserError | None) -> None:
        """The open connection broke: forget its entities and schedule a reconnect."""
        self._disconnect(error, ConnectionState.LOST)
        if not self._closed:
            self._fail(error or UserError("The connection was lost."))

    def _disconnect(self, error: UserError | None, state: ConnectionState) -> None:
        with self._held_lock:
            conn, self._conn = self._conn, None
            held = self._held.get(id(conn)) if conn is not None else None
            if held is not None:
                held[2] = True  # closed by the last block holding it (see held())
        self.is_populated = False
        self._generation += 1
        if conn is not None:
            for kind, cb_id in self._callback_ids:
                try:
                    getattr(conn, kind)(cb_id)
                except libvirt.libvirtError:
                    pass
            self._callback_ids.clear()
            try:
                conn.unregisterCloseCallback()
            except libvirt.libvirtError:
                pass
            if held is None:
                try:
                    conn.close()
                except libvirt.libvirtError:
                    pass
        self._forget_entities()
        self._set_state(state, error)

    def _forget_entities(self) -> None:
        self._stats.clear()
        for store, signal in ((self.domains, self.domains_removed),
                              (self.pools, self.pools_removed),
                              (self.networks, self.networks_removed)):
            if store:
                gone = list(store.values())
                store.clear()
                signal.emit(self, gone)

    def _read_host_facts(self, conn: libvirt.virConnect) -> None:
        self.hypervisor = conn.getType()
        try:
            self.hostname = conn.getHostname()
        except libvirt.libvirtError:
            self.hostname = ""
        version = conn.getLibVersion()
        self.libvirt_version = f"{version // 1000000}.{version // 1000 % 1000}.{version % 1000}"
        try:
            self.host_uuid = ET.fromstring(conn.getCapabilities()).findtext("host/uuid", "") or ""
        except (libvirt.libvirtError, ET.ParseError):
            self.host_uuid = ""

    def _register_callbacks(self, conn: libvirt.virConnect, gen: int) -> None:
        def on_close(_conn: Any, reason: int, _opaque: Any) -> None:
            text = _CLOSE_REASONS.get(reason, f"reason {reason}")
            self._worker.submit(self._on_closed, gen, UserError(
                f"Connection lost: {text}.", f"close callback reason {reason}"))

        conn.registerCloseCallback(on_close, None)

        def on_domain(_conn: Any, dom: libvirt.virDomain, *_rest: Any) -> None:
            self._worker.submit(self._refresh_domains, gen, [dom.UUIDString()])

        def on_lifecycle(_conn: Any, dom: libvirt.virDomain, event: int, *_rest: Any) -> None:
            on_domain(_conn, dom)
            # After the refresh, on the worker: listeners see the new XML (e.g. taps).
            self._worker.submit(self.domain_lifecycle.emit, self, dom.UUIDString(), event)

        domain_events = [
            libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
            libvirt.VIR_DOMAIN_EVENT_ID_REBOOT,
            libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED,
            libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
            libvirt.VIR_DOMAIN_EVENT_ID_METADATA_CHANGE,
            # Says which disk failed; the refresh reads the pause reason and disk errors.
            libvirt.VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON,
        ]
        for event_id in domain_events:
            try:
                cb_id = conn.domainEventRegisterAny(
                    None, event_id,
                    on_lifecycle if event_id == libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE
                    else on_domain, None)
            except libvirt.libvirtError:
                log.debug("%s does not offer domain event %s", self.uri, event_id)
                continue
            self._callback_ids.append(("domainEventDeregisterAny", cb_id))

        def on_pool(_conn: Any, pool: libvirt.virStoragePool, *_rest: Any) -> None:
            self._worker.submit(self._refresh_pool, gen, pool.UUIDString())

        for event_id in (libvirt.VIR_STORAGE_POOL_EVENT_ID_LIFECYCLE,
                         libvirt.VIR_STORAGE_POOL_EVENT_ID_REFRESH):
            try:
                cb_id = conn.storagePoolEventRegisterAny(None, event_id, on_pool, None)
            except libvirt.libvirtError:
                continue
            self._callback_ids.append(("storagePoolEventDeregisterAny", cb_id))

        def on_network(_conn: Any, net: libvirt.virNetwork, *_rest: Any) -> None:
            self._worker.submit(self._refresh_network, gen, net.UUIDString())

        try:
            cb_id = conn.networkEventRegisterAny(
                None, libvirt.VIR_NETWORK_EVENT_ID_LIFECYCLE, on_network, None)
            self._callback_ids.append(("networkEventDeregisterAny", cb_id))
        except libvirt.libvirtError:
            pass

    def _on_closed(self, gen: int, error: UserError) -> None:
        if gen == self._generation and self._conn is not None:
            log.info("%s: %s", self.uri, error.message)
            self._drop(error)

    # ---- inventory ---------------------------------------------------------------

    def _populate(self, conn: libvirt.virConnect) -> None:
        persistent = {d.UUIDString() for d in conn.listAllDomains(
            libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT)}
        autostart = {d.UUIDString() for d in conn.listAllDomains(
            libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART)}
        batch: list[Domain] = []
        for dom in conn.listAllDomains(0):
            uuid = dom.UUIDString()
            try:
                state, reason = dom.state()
                xml = dom.XMLDesc(0)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue  # vanished between listing and reading
                raise
            entity = Domain(self.uri, uuid, xml, state, reason,
                            uuid in persistent, uuid in autostart)
            entity.disk_errors = read_disk_errors(dom, state, reason)
            self.domains[uuid] = entity
            batch.append(entity)
            if len(batch) >= POPULATE_CHUNK:
                self.domains_added.emit(self, batch)
                batch = []
        if batch:
            self.domains_added.emit(self, batch)

        pools = []
        for pool in _unless_unsupported(conn.listAllStoragePools):
            entity = self._read_pool(pool)
            self.pools[entity.uuid] = entity
            pools.append(entity)
        if pools:
            self.pools_added.emit(self, pools)
        nets = []
        for net in _unless_unsupported(conn.listAllNetworks):
            entity = Network(self.uri, net.UUIDString(), net.XMLDesc(0),
                             bool(net.isActive()), bool(net.autostart()))
            self.networks[entity.uuid] = entity
            nets.append(entity)
        if nets:
            self.networks_added.emit(self, nets)
        # After the pools, so listeners can name the pool of each failing disk.
        io_paused = [d for d in self.domains.values() if paused_on_io_error(d)]
        if io_paused:
            self.domains_io_paused.emit(self, io_paused)

    def _read_pool(self, pool: libvirt.virStoragePool) -> StoragePool:
        active = bool(pool.isActive())
        entity = StoragePool(self.uri, pool.UUIDString(), pool.XMLDesc(0), active,
                             bool(pool.autostart()))
        if active:
            volumes = []
            for vol in pool.listAllVolumes(0):
                try:
                    volumes.append(Volume.from_xml(vol.XMLDesc(0)))
                except (libvirt.libvirtError, ET.ParseError):
                    continue  # deleted meanwhile, or unreadable: the next refresh tells
            entity.volumes = volumes
        return entity

    def _refresh_domains(self, gen: int, uuids: list[str]) -> None:
        conn = self._conn
        if conn is None or gen != self._generation:
            return
        added, changed, removed, io_paused = [], [], [], []
        for uuid in uuids:
            try:
                dom = conn.lookupByUUIDString(uuid)
                state, reason = dom.state()
                xml = dom.XMLDesc(0)
                persistent = bool(dom.isPersistent())
                autostart = bool(dom.autostart()) if persistent else False
                disk_errors = read_disk_errors(dom, state, reason)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    log.warning("refreshing %s on %s failed: %s", uuid, self.uri, exc)
                    if not conn.isAlive():
                        self._drop(describe(exc))
                    continue
                entity = self.domains.pop(uuid, None)
                self._stats.forget(uuid)
                if entity is not None:
                    removed.append(entity)
                continue
            entity = self.domains.get(uuid)
            was_io_paused = entity is not None and paused_on_io_error(entity)
            if entity is None:
                entity = Domain(self.uri, uuid, xml, state, reason, persistent, autostart)
                entity.disk_errors = disk_errors
                self.domains[uuid] = entity
                added.append(entity)
            else:
                entity.disk_errors = disk_errors
                if xml != entity.xml:
                    entity.set_xml(xml)
                entity.set_state(state, reason)
                entity.persistent = persistent
                entity.autostart = autostart
                if not entity.state.is_active:
                    self._stats.forget(uuid)
                    entity.stats.cpu_percent = 0.0
                    entity.stats.disk_bytes_per_s = 0.0
                    entity.stats.net_bytes_per_s = 0.0
                changed.append(entity)
            if paused_on_io_error(entity) and not was_io_paused:
                io_paused.append(entity)
        if added:
            self.domains_added.emit(self, added)
        if changed:
            self.domains_changed.emit(self, changed)
        if removed:
            self.domains_removed.emit(self, removed)
        if io_paused:
            self.domains_io_paused.emit(self, io_paused)

    def _refresh_pool(self, gen: int, uuid: str) -> None:
        conn = self._conn
        if conn is None or gen != self._generation:
            return
        try:
            entity = self._read_pool(conn.storagePoolLookupByUUIDString(uuid))
        except libvirt.libvirtError:
            gone = self.pools.pop(uuid, None)
            if gone is not None:
                self.pools_removed.emit(self, [gone])
            return
        known = uuid in self.pools
        self.pools[uuid] = entity
        (self.pools_changed if known else self.pools_added).emit(self, [entity])

    def _refresh_network(self, gen: int, uuid: str) -> None:
        conn = self._conn
        if conn is None or gen != self._generation:
            return
        try:
            net = conn.networkLookupByUUIDString(uuid)
            entity = Network(self.uri, uuid, net.XMLDesc(0), bool(net.isActive()),
                             bool(net.autostart()))
        except libvirt.libvirtError:
            gone = self.networks.pop(uuid, None)
            if gone is not None:
                self.networks_removed.emit(self, [gone])
            return
        known = uuid in self.networks
        self.networks[uuid] = entity
        (self.networks_changed if known else self.networks_added).emit(self, [entity])

    # ---- statistics --------------------------------------------------------------

    def _stats_tick(self, gen: int) -> None:
        conn = self._conn
        if conn is None or gen != self._generation:
            return
        try:
            records = conn.getAllDomainStats(
                libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
                | libvirt.VIR_DOMAIN_STATS_INTERFACE | libvirt.VIR_DOMAIN_STATS_BLOCK,
                libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE,
            )
        except libvirt.libvirtError as exc:
            if not conn.isAlive():
                self._drop(describe(exc))
                return
            log.debug("bulk statistics on %s failed: %s", self.uri, exc)
            records = []
        now = time.monotonic()
        updated: list[Domain] = []
        stale_state: list[str] = []
        for dom, record in records:
            uuid = dom.UUIDString()
            entity = self.domains.get(uuid)
            if entity is None:
                stale_state.append(uuid)
                continue
            if record.get("state.state", entity.state) != entity.state:
                stale_state.append(uuid)
            self._stats.update(entity, record, now)
            updated.append(entity)
        if updated:
            self.stats_updated.emit(self, updated)
        if stale_state:
            # An event was missed (or not offered by the driver): read those again.
            self._refresh_domains(gen, stale_state)
        if gen == self._generation:
            self._worker.call_later(self.stats_interval, self._stats_tick, gen)
