"""What the server holds: the published build it serves, the events it accepted since, the
warehouse connection and the rebuilds it runs.

The build is held as one immutable :class:`Served` object (build info, recommender, customer
intelligence, rules), replaced by reference when a rebuild succeeds: a request reads
``state.served`` once and keeps that object to its end, so it never sees half of two builds, and
a rebuild that fails leaves the old object serving.

DuckDB lets one process hold the file for writing, and a connection is not for several threads
at once: every thread here works on its own cursor of the one connection, and writes go through
one lock. Events are written by one thread that commits together whatever requests are waiting
(group commit): one transaction per batch instead of one per request.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import uuid
from collections import OrderedDict, defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pandas as pd

from tailor.build import BuildInfo, builds_dir, current_build, load_recommender, load_rules
from tailor.build import build as run_build
from tailor.config import load_settings
from tailor.customers.intelligence import CustomerIntelligence
from tailor.errors import TailorError
from tailor.marketing.targeting import OfferScores
from tailor.privacy import keys
from tailor.privacy.consent import PURPOSES, opted_out, set_consent
from tailor.privacy.erasure import Erasure, forget
from tailor.privacy.pseudonym import CustomerIds
from tailor.recommend import Recommender
from tailor.serve.auth import KeyRing, create_key, ensure_table
from tailor.serve.settings import ServeSettings
from tailor.store.append import append_events
from tailor.store.warehouse import Warehouse

log = logging.getLogger("tailor.serve")

Events = dict[str, list[Any]]
"""Events by column (see tailor.store.append.EVENT_COLUMNS), one request's."""

RECENT_PER_CUSTOMER = 1000
"""Events since the build kept per customer for their lists (the newest)."""
BATCH_EVENTS = 5000
"""Events committed together at most."""
LIST_CACHE_SIZE = 100_000
"""Lists kept per build (see :class:`ListCache`)."""


class ListCache:
    """Recently answered lists of one build, least recently used dropped first (thread-safe).

    A customer's list changes only with a new build or with their own events since it: the
    routes cache only lists of customers without such events, and each build has its own cache,
    so a hot swap starts afresh. Recommenders score the whole catalogue per call; a repeated
    request then costs a dictionary lookup, as Gorse's cached lists do.
    """

    def __init__(self, size: int = LIST_CACHE_SIZE) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._lists: OrderedDict[tuple, Any] = OrderedDict()

    def get(self, key: tuple) -> Any | None:
        with self._lock:
            found = self._lists.get(key)
            if found is not None:
                self._lists.move_to_end(key)
            return found

    def put(self, key: tuple, value: Any) -> None:
        with self._lock:
            self._lists[key] = value
            self._lists.move_to_end(key)
            while len(self._lists) > self._size:
                self._lists.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._lists)


@dataclass(frozen=True)
class Served:
    """One published build, loaded: what every read request uses."""

    info: BuildInfo
    recommender: Recommender
    intelligence: CustomerIntelligence | None
    rules: pd.DataFrame | None
    customer_rows: MappingProxyType[str, int]  # str(customer_id) -> row of intelligence.customers
    offers: pd.DataFrame | None = None  # the build's offer scores, indexed by str(customer_id)
    lists: ListCache = field(default_factory=ListCache, compare=False)

    @property
    def build_id(self) -> str:
        return self.info.build_id


def load_served(info: BuildInfo) -> Served:
    """Load a build's default recommender, rules and customer intelligence."""
    recommender = load_recommender(info)
    try:
        rules = load_rules(info)
    except TailorError:
        rules = None
    try:
        intelligence = CustomerIntelligence.load(info.path / "customers")
    except TailorError:
        intelligence = None
    rows: dict[str, int] = {}
    if intelligence is not None:
        ids = intelligence.customers["customer_id"].astype(str)
        rows = dict(zip(ids, range(len(ids)), strict=True))
    try:
        scores = OfferScores.load(info.path / "offers").scores
        offers = scores.set_index(scores["customer_id"].astype(str).rename("key")).sort_index()
    except TailorError:
        offers = None
    ds = recommender.dataset_
    if ds.n_customers and ds.n_items:  # warm the caches before the first request
        recommender.recommend(ds.customer_ids[:1], k=1)
        recommender.recommend_session(ds.item_ids[:1], k=1)
    return Served(info, recommender, intelligence, rules, MappingProxyType(rows), offers)


def id_key(value: Any) -> str:
    """An id as the server keys it: text, stripped (integer 12 and "12" are one id)."""
    return str(value).strip()


class EventsSinceBuild:
    """Events accepted since the served build's data was read, per customer, in memory.

    Each event gets a sequence number; a rebuild notes the number it started at and, once its
    build is served, forgets the events before it (the build has them).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_customer: dict[str, deque[tuple[int, str, str, float | None]]] = defaultdict(
            lambda: deque(maxlen=RECENT_PER_CUSTOMER)
        )
        self._next = 0

    def add(self, events: Events) -> None:
        rows = zip(
            events["customer_id"], events["item_id"], events["event_type"], events["value"],
            strict=True,
        )  # fmt: skip
        with self._lock:
            for customer, item, kind, value in rows:  # one request's events: a few
                self._by_customer[customer].append((self._next, item, kind, value))
                self._next += 1

    def mark(self) -> int:
        """The sequence number the next event will get."""
        with self._lock:
            return self._next

    def forget_before(self, mark: int) -> None:
        with self._lock:
            for customer in list(self._by_customer):
                kept = [e for e in self._by_customer[customer] if e[0] >= mark]
                if kept:
                    self._by_customer[customer] = deque(kept, maxlen=RECENT_PER_CUSTOMER)
                else:
                    del self._by_customer[customer]

    def drop(self, customer: str) -> None:
        """Forget a customer's events (erasure)."""
        with self._lock:
            self._by_customer.pop(customer, None)

    def frame(self, customer: str) -> pd.DataFrame | None:
        """The customer's events as ``Recommender.recommend(recent=...)`` reads them."""
        with self._lock:
            events = list(self._by_customer.get(customer, ()))
        if not events:
            return None
        _, items, kinds, values = zip(*events, strict=True)
        return pd.DataFrame(
            {"customer_id": customer, "item_id": items, "event_type": kinds, "value": values}
        )

    def __len__(self) -> int:
        with self._lock:
            return sum(len(d) for d in self._by_customer.values())


class EventWriter:
    """One thread that appends waiting events to the warehouse, a batch per transaction."""

    def __init__(self, wh: Warehouse, lock: threading.Lock) -> None:
        self._wh = wh
        self._lock = lock
        self._queue: queue.Queue[tuple[Events, concurrent.futures.Future[int]] | None]
        self._queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="tailor-events", daemon=True)
        self._thread.start()

    def submit(self, events: Events) -> concurrent.futures.Future[int]:
        """Queue ``events``; the future completes once they are committed."""
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._queue.put((events, future))
        return future

    def rebind(self, wh: Warehouse) -> None:
        """Write through ``wh`` from now on (call holding the write lock)."""
        self._wh = wh

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            size = len(first[0]["item_id"])
            stop = False
            while size < BATCH_EVENTS:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
                size += len(item[0]["item_id"])
            self._write(batch)
            if stop:
                return

    def _write(self, batch: list[tuple[Events, concurrent.futures.Future[int]]]) -> None:
        columns = batch[0][0].keys()
        frame = pd.DataFrame({c: [v for events, _ in batch for v in events[c]] for c in columns})
        try:
            with self._lock:
                append_events(self._wh, frame)
        except Exception:
            if len(batch) == 1:
                log.exception("events not stored")
                batch[0][1].set_exception(TailorError("the events could not be stored"))
                return
            # One request at a time, so that a request that cannot be stored fails alone.
            for item in batch:
                self._write([item])
            return
        for events, future in batch:
            future.set_result(len(events["item_id"]))


@dataclass
class RebuildJob:
    job_id: str
    status: str = "running"  # running, succeeded, failed
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    build_id: str | None = None
    error: str | None = None


class RebuildRunning(TailorError):
    """A rebuild is under way already."""


class Gate:
    """Reads share the warehouse connection; :meth:`closed` waits for them to end and holds new
    ones back while the connection is replaced (the file rewrite of an erasure)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._closed = False

    @contextmanager
    def open(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._closed)
            self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                self._readers -= 1
                self._condition.notify_all()

    @contextmanager
    def closed(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._closed)
            self._closed = True
            self._condition.wait_for(lambda: self._readers == 0)
        try:
            yield
        finally:
            with self._condition:
                self._closed = False
                self._condition.notify_all()


class ServingState:
    """Everything a running server holds. ``served`` is replaced, never changed."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        config = load_settings(settings.db, settings.config)
        # The write lock, for the server's life; encrypted with the configured key, if any.
        self.wh = Warehouse(settings.db, encryption_key=keys.warehouse_key(config))
        # How customers are named: by pseudonyms in a pseudonymized warehouse, which ids in
        # requests are turned into (see customer_key).
        self.customer_ids = CustomerIds.of(self.wh, keys.pseudonym_secret(config))
        self.write_lock = threading.Lock()
        self.gate = Gate()
        ensure_table(self.wh)
        self.keys = KeyRing()
        self.keys.load(self.wh)
        # Opt-outs per consent purpose (ids as text), read at start and changed by PUT
        # /v1/customers/{id}/consent: consent takes effect at once, not at the next build.
        self.opted_out = {p: frozenset(opted_out(self.wh, p)) for p in PURPOSES}
        self.recent = EventsSinceBuild()
        self.served: Served | None = None
        try:
            with keys.use_settings(config):  # the build files' key, as configured for this server
                self.served = load_served(current_build(builds_dir(settings.db)))
        except TailorError as exc:  # serve what can be served; a rebuild can publish one
            log.warning("no build served: %s", exc)
        self.writer = EventWriter(self.cursor(), self.write_lock)
        self.jobs: dict[str, RebuildJob] = {}
        self._rebuilding = threading.Lock()

    def customer_key(self, customer_id: Any) -> str:
        """A customer id from a request as the server keys customers (see :func:`id_key`): its
        pseudonym where the warehouse has them (:mod:`tailor.privacy.pseudonym`)."""
        return id_key(self.customer_ids.lookup(customer_id))

    def cursor(self) -> Warehouse:
        """The warehouse on a cursor of its own: for one thread (DuckDB connections are not
        safe to share between threads; cursors of one connection are)."""
        return self.wh.cursor()

    @contextmanager
    def reading(self) -> Iterator[Warehouse]:
        with self.gate.open():
            view = self.cursor()
            try:
                yield view
            finally:
                view.con.close()

    def accept(self, events: Events) -> concurrent.futures.Future[int]:
        """Store events durably; once stored they count in the customers' lists."""
        future = self.writer.submit(events)

        def remember(done: concurrent.futures.Future[int]) -> None:
            if done.exception() is None:
                self.recent.add(events)

        future.add_done_callback(remember)
        return future

    def set_consent(self, customer: str, **flags: bool | None) -> dict[str, bool | None]:
        """Store a customer's consent flags and apply them to the next request."""
        with self.write_lock, self.reading() as wh:
            now = set_consent(wh, customer, **flags)
            key = id_key(customer)
            for purpose, value in now.items():
                ids = set(self.opted_out[purpose])
                (ids.add if value is False else ids.discard)(key)
                self.opted_out[purpose] = frozenset(ids)
        return now

    def forget(self, customer: str) -> Erasure:
        """Forget a customer everywhere (see :mod:`tailor.privacy.erasure`) and serve the build
        without them before answering. Refused while a rebuild runs (it reads the warehouse)."""
        if not self._rebuilding.acquire(blocking=False):
            raise RebuildRunning("a rebuild is running; ask again when it has finished")
        try:
            # No reads and no writes while the warehouse file is replaced.
            with self.write_lock, self.gate.closed():
                done = forget(self.wh, builds_dir(self.settings.db), customer)
                self.writer.rebind(self.cursor())
            if done.build_id is not None:
                self.served = load_served(current_build(builds_dir(self.settings.db)))
            key = id_key(customer)
            self.recent.drop(key)
            self.opted_out = {p: ids - {key} for p, ids in self.opted_out.items()}
        finally:
            self._rebuilding.release()
        return done

    def create_key(self, role: str) -> str:
        with self.write_lock, self.reading() as wh:
            key = create_key(wh, role)
            self.keys.load(wh)
        return key

    # -- rebuilds ------------------------------------------------------------------------------

    def start_rebuild(self, as_of: str | None = None) -> RebuildJob:
        """Run ``tailor.build.build`` in a thread and serve its build when it succeeds."""
        if not self._rebuilding.acquire(blocking=False):
            running = next(j.job_id for j in self.jobs.values() if j.status == "running")
            raise RebuildRunning(f"rebuild {running} is running")
        job = RebuildJob(uuid.uuid4().hex[:12])
        self.jobs[job.job_id] = job
        threading.Thread(
            target=self._rebuild, args=(job, as_of), name="tailor-rebuild", daemon=True
        ).start()
        return job

    def _rebuild(self, job: RebuildJob, as_of: str | None) -> None:
        mark = self.recent.mark()
        view = self.cursor()
        try:
            # Settings are read again: a changed tailor.toml counts from the next rebuild.
            settings = load_settings(self.settings.db, self.settings.config)
            with keys.use_settings(settings):  # a thread starts with no settings active
                info = run_build(
                    view,
                    builds_dir(self.settings.db),
                    as_of=as_of,
                    weights=settings.weights,
                    recommenders=settings.recommenders,
                )
                served = load_served(info)
        except Exception as exc:
            log.exception("rebuild %s failed", job.job_id)
            job.error = str(exc) or type(exc).__name__
            job.status = "failed"
        else:
            self.served = served  # the swap: one reference, atomically
            if as_of is None:  # the build holds every event before the mark
                self.recent.forget_before(mark)
            job.build_id = info.build_id
            job.status = "succeeded"
        finally:
            job.finished_at = datetime.now(UTC)
            view.con.close()
            self._rebuilding.release()

    def close(self) -> None:
        self.writer.close()
        self.wh.close()
