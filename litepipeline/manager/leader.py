"""Leadership on PostgreSQL: the lease row's SQL and the loops that keep or seek it.

:class:`LeaseSql` runs the four statements (read, take over, renew, release) on an
engine of its own, so a renewal never queues behind the scheduler's writes on the
database thread. :class:`Leadership` drives them: :meth:`Leadership.wait_to_lead` polls
as a standby until it holds the lease; :meth:`Leadership.start_renewing` keeps it, and
calls ``on_deposed`` (in the event loop) with one line of why the moment it is lost. Every decision is
:class:`~litepipeline.manager.leadership.Lease`'s; the database's ``now()`` is the only
clock the managers share.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from litepipeline.manager.leadership import POLL_INTERVAL, TTL, Lease, LeaseRow

LOG = logging.getLogger(__name__)
# a lease statement waits this long at most, for a lock or for the server: a slow answer
# is a failed renewal, retried while the lease lasts
STATEMENT_TIMEOUT_MS = 1500
LOCK_TIMEOUT_MS = 1000

READ = text("SELECT epoch, manager_id, leader, expires_at, now() AS db_now FROM leadership WHERE id = 1")
TAKE_OVER = text(
    "UPDATE leadership SET epoch = epoch + 1, manager_id = :manager_id, leader = :leader, "
    "expires_at = now() + make_interval(secs => :ttl), acquired_at = now() "
    "WHERE id = 1 AND epoch = :seen AND (manager_id IS NULL OR expires_at <= now()) RETURNING epoch")
RENEW = text("UPDATE leadership SET expires_at = now() + make_interval(secs => :ttl) "
             "WHERE id = 1 AND epoch = :epoch AND manager_id = :manager_id RETURNING epoch")
# the deposed leader's sessions: a leader frozen in the middle of a pipelined write holds
# its row locks for as long as its connection lives (no timeout of the server ends it)
END_SESSIONS = text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = :name AND pid <> pg_backend_pid()")
RELEASE = text("UPDATE leadership SET expires_at = now(), manager_id = NULL "
               "WHERE id = 1 AND epoch = :epoch AND manager_id = :manager_id")


def application_name(manager_id: str) -> str:
    """The PostgreSQL ``application_name`` of every connection of one manager process."""
    return f"litepipeline {manager_id}"


def is_postgres(url: Optional[str]) -> bool:
    """Whether ``url`` is a PostgreSQL database: the only store with leadership."""
    if not url:
        return False
    try:
        return make_url(url).get_backend_name() == "postgresql"
    except Exception:  # noqa: BLE001 - a bad URL is the config's to report
        return False


class LeaseSql:
    """The lease's statements (blocking; one autocommit statement each)."""

    def __init__(self, url: str, ttl: float = TTL, name: Optional[str] = None) -> None:
        self.ttl = ttl
        options = f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS}"
        connect_args: dict = {"options": options, "connect_timeout": 2}
        if name:
            connect_args["application_name"] = name
        self.engine = create_engine(url, pool_size=1, max_overflow=1, pool_pre_ping=True,
                                    isolation_level="AUTOCOMMIT", connect_args=connect_args)

    def read(self) -> LeaseRow:
        with self.engine.connect() as conn:
            row = conn.execute(READ).one()
        leader = json.loads(row.leader) if row.leader else None
        return LeaseRow(row.epoch, row.manager_id, leader, row.expires_at, row.db_now)

    def take_over(self, seen_epoch: int, manager_id: str, leader: dict) -> Optional[int]:
        """The new epoch, or None when another manager was quicker (or the lease is held)."""
        with self.engine.connect() as conn:
            row = conn.execute(TAKE_OVER, {"manager_id": manager_id, "leader": json.dumps(leader),
                                           "ttl": self.ttl, "seen": seen_epoch}).first()
        return None if row is None else int(row[0])

    def end_sessions(self, manager_id: str) -> int:
        """End every database session of the manager ``manager_id`` (a deposed leader): its
        open transactions roll back and their locks go. Returns how many were ended."""
        with self.engine.connect() as conn:
            return int(conn.execute(END_SESSIONS, {"name": application_name(manager_id)}).scalar_one())

    def renew(self, epoch: int, manager_id: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(RENEW, {"ttl": self.ttl, "epoch": epoch, "manager_id": manager_id}).first()
        return row is not None

    def release(self, epoch: int, manager_id: str) -> None:
        """Give the lease up now (a clean shutdown): a standby need not wait for it to expire."""
        with self.engine.connect() as conn:
            conn.execute(RELEASE, {"epoch": epoch, "manager_id": manager_id})

    def close(self) -> None:
        self.engine.dispose()


class Leadership:
    """Seeks, keeps and gives up the lease of one manager process.

    Args:
        url: the PostgreSQL database (already migrated: the ``leadership`` table exists).
        identity: this manager's identity (see :func:`~litepipeline.manager.leadership.identity`).
        on_deposed: called once with the reason when the lease is lost after being held.
    """

    def __init__(self, url: str, identity: dict, on_deposed: Callable[[str], None], ttl: float = TTL,
                 poll_interval: float = POLL_INTERVAL) -> None:
        self.identity = identity
        self.lease = Lease(identity["manager_id"], ttl)
        self.application_name = application_name(identity["manager_id"])
        self.sql = LeaseSql(url, ttl, self.application_name)
        self.on_deposed = on_deposed
        self.poll_interval = poll_interval
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="litepipeline-lease")
        self._renewer: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._last_error: Optional[str] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._reported = False
        #: set once this manager, holding the lease, serves as the leader (its start is done)
        self.serving = False

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    @property
    def epoch(self) -> Optional[int]:
        return self.lease.epoch

    def view(self) -> dict:
        """``role`` and ``leader`` as ``GET /`` and ``/cluster/info`` show them (while the new
        leader starts, before it serves, nobody leads yet as far as others can tell)."""
        if self.lease.leading:
            return {"role": "leader", "leader": self.lease.leader} if self.serving else {"role": "standby",
                                                                                          "leader": None}
        return {"role": "standby", "leader": None if self.lease.deposed else self.lease.leader}

    async def wait_to_lead(self) -> int:
        """Poll as a standby until this manager holds the lease; returns its epoch."""
        self._loop = asyncio.get_running_loop()
        while True:
            sent_at = self.lease.clock()
            try:
                row = await self._call(self.sql.read)
                if self.lease.should_take_over(row):
                    epoch = await self._call(self.sql.take_over, row.epoch, self.lease.manager_id,
                                             {**self.identity, "epoch": row.epoch + 1})
                    if epoch is not None:
                        self.lease.acquired(epoch, sent_at, self.identity)
                        LOG.info("this manager leads now (epoch %d; the lease of epoch %d had expired)",
                                 epoch, row.epoch)
                        if row.manager_id:
                            await self._end_sessions(row.manager_id)
                        return epoch
                self._trouble(None)
            except Exception as exc:  # noqa: BLE001 - the database away: keep looking
                self._trouble(f"cannot read the leadership lease: {type(exc).__name__}: {exc}")
            await asyncio.sleep(self.poll_interval)

    async def _end_sessions(self, manager_id: str) -> None:
        """Fencing's last step: the deposed leader's sessions end, so no transaction it left
        open (frozen mid-write) keeps locks the new leader's writes would wait on for ever."""
        try:
            ended = await self._call(self.sql.end_sessions, manager_id)
        except Exception as exc:  # noqa: BLE001 - e.g. no right to; its sessions then end with it
            LOG.warning("could not end the database sessions of the previous leader %s: %s", manager_id, exc)
            return
        if ended:
            LOG.info("ended %d database session(s) of the previous leader %s", ended, manager_id)

    def start_renewing(self) -> None:
        """Keep the lease from a thread of its own: a busy event loop (a big task being
        loaded, say) must not cost the lease."""
        self._renewer = threading.Thread(target=self._renew_loop, name="litepipeline-lease-renewal", daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        lease = self.lease
        while lease.leading and not self._stop.wait(lease.next_renewal()):
            sent_at = lease.clock()
            if sent_at >= lease.deadline:   # e.g. this process was stopped (SIGSTOP) past its lease
                self._deposed_soon(lease.renewal_failed("this process did not run for longer than the lease: "
                                                        "stopped, or starved of CPU"))
                return
            try:
                ours = self.sql.renew(lease.epoch, lease.manager_id)
            except Exception as exc:  # noqa: BLE001 - one failed renewal is retried while the lease lasts
                reason = lease.renewal_failed(f"{type(exc).__name__}: {exc}")
                if reason:
                    self._deposed_soon(reason)
                    return
                LOG.warning("lease renewal failed, retrying: %s", exc)
                continue
            if ours:
                lease.renewed(sent_at)
                continue
            try:
                row = self.sql.read()
            except Exception:  # noqa: BLE001 - who leads now is only for the log line
                row = None
            self._deposed_soon(lease.renewal_refused(row))
            return

    def fence_failed(self, found_epoch: Optional[int]) -> None:
        """The store's epoch check refused a write (called from the database thread)."""
        self._deposed_soon(self.lease.fence_failed(found_epoch))

    def _deposed_soon(self, reason: Optional[str]) -> None:
        """From another thread: step down in the event loop (``holds()`` is already False,
        so nothing is written or sent meanwhile)."""
        loop = self._loop
        if loop is not None and reason:
            loop.call_soon_threadsafe(self._deposed, reason)

    def _deposed(self, reason: Optional[str]) -> None:
        if reason and not self._reported:
            self._reported = True
            self.on_deposed(reason)

    async def release(self) -> None:
        """A clean shutdown of the leader: the lease ends now, so a standby takes over at once."""
        self._stop_renewing()
        if self.lease.leading:
            try:
                await self._call(self.sql.release, self.lease.epoch, self.lease.manager_id)
                LOG.info("leadership released (epoch %d)", self.lease.epoch)
            except Exception as exc:  # noqa: BLE001 - the lease then simply expires
                LOG.warning("could not release the leadership lease: %s", exc)

    def _stop_renewing(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=STATEMENT_TIMEOUT_MS / 1000 + 1)
            self._renewer = None

    def close(self) -> None:
        self._stop_renewing()
        self._thread.shutdown(wait=False)
        self.sql.close()

    def _trouble(self, error: Optional[str]) -> None:
        if error != self._last_error:   # one line per change of trouble, not one per poll
            if error:
                LOG.warning("%s; retrying every %g s", error, self.poll_interval)
            self._last_error = error
