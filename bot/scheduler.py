"""A small persisted scheduler on the injectable clock: run at, run daily, cron.

Jobs live in the ``scheduled_jobs`` table, keyed by a caller-chosen ``key`` (scheduling the same key again
replaces the job), and name a handler registered by a skill (``@skill.job``), so they survive restarts.

Missed runs (the bot was down): one catch-up run if the job is at most ``misfire_grace_s`` late, otherwise the
run is skipped and logged; never a burst of missed runs. A recurring job's next run is computed from the present,
never by stepping through the runs it missed. A job's effects and its bookkeeping commit together.

The same holds when a virtual clock jumps (a replay line far in the future, ``--until`` weeks ahead): a recurring
job whose next run would still lie more than ``CLOCK_JUMP`` before where the clock is heading runs once on the
way, and its next run is computed from where the clock lands — not once per virtual day of the jump.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from croniter import croniter
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.backoff import backoff_delay
from bot.clock import Clock, TimerHandle
from bot.context import Context, JobRun
from storage.models import AccountRoom, ScheduledJob
from storage.prepared import Prepared
from storage.transactions import after_commit
from storage.upsert import insert_for

if TYPE_CHECKING:
    from bot.context import Services

log = logging.getLogger(__name__)

JobHandler = Callable[[Context], Awaitable[None]]
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
MAX_ATTEMPTS = 3  # a one-off job that keeps failing is marked failed after this many tries
BATCH = 100  # jobs run per look at the table
RETRY_S = 30  # after a pass failed (the database away), the next look
# A virtual clock heading further than this past a recurring job's next run has jumped (see the module's docstring).
# A month: a replay (or a test) of a few quiet weeks still runs every daily job each day — at most ~31 runs of work —
# while a line a year ahead runs it once.
CLOCK_JUMP = timedelta(days=31)

# The statements of the hot path, built once: Core on the table, parameters bound per run. Building a statement
# costs about as much as running it through SQLAlchemy, and an ORM load and flush several times more; on a day
# with 50,000 orders' reminders these few statements per job are most of the scheduler's cost.
_JOBS = ScheduledJob.__table__
_CLAIM = Prepared(
    select(_JOBS.c.key, _JOBS.c.handler, _JOBS.c.payload, _JOBS.c.schedule, _JOBS.c.spec, _JOBS.c.next_run_at,
           _JOBS.c.status, _JOBS.c.misfire_grace_s, _JOBS.c.attempts)
    .where(_JOBS.c.id == bindparam("job_id")).with_for_update(skip_locked=True))
# A run's bookkeeping, only if the handler didn't re-define or cancel its own job in the same transaction (then
# the new definition stands and _TOUCHED only notes the run).
_RAN = Prepared(
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("job_id"), _JOBS.c.status == "active",
           _JOBS.c.schedule == bindparam("was_schedule"), _JOBS.c.spec == bindparam("was_spec"),
           _JOBS.c.next_run_at == bindparam("was_next"))
    .values(last_run_at=bindparam("now"), last_error=None, run_count=_JOBS.c.run_count + 1, attempts=0,
            next_run_at=bindparam("following"), status=bindparam("new_status")))
_TOUCHED = Prepared(update(_JOBS).where(_JOBS.c.id == bindparam("job_id"))
                    .values(last_run_at=bindparam("now"), last_error=None))
_MISSED = Prepared(update(_JOBS).where(_JOBS.c.id == bindparam("job_id"))
                   .values(next_run_at=bindparam("following"), status=bindparam("new_status")))
_CANCEL = (update(_JOBS).where(_JOBS.c.key.in_(bindparam("keys", expanding=True)),
                               _JOBS.c.status.in_(("active", "paused"))).values(status="cancelled"))
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
_BY_KEY = Prepared(select(_JOBS.c.status, _JOBS.c.next_run_at).where(_JOBS.c.key == bindparam("job_key")))
# what scheduling a key again replaces (run_count and created_at stay)
_REDEFINED = ("handler", "payload", "schedule", "spec", "next_run_at", "status", "misfire_grace_s", "last_error",
              "room_id", "attempts")


class ScheduleError(ValueError):
    pass


class Scheduler:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock
        self._handlers: dict[str, JobHandler] = {}
        self._timer: TimerHandle | None = None
        self._timer_at: datetime | None = None
        self._poll: TimerHandle | None = None
        self._running = False
        self._armed_while_running: datetime | None = None
        self._started = False
        # A database shared by several accounts: a room's jobs run only where this account is in the room.
        self.shared = False
        self.account_id: str | None = None
        self.services: Services | None = None
        self.fired: list[tuple[str, datetime]] = []  # (key, scheduled_for) of runs in this process
        self._upserts: dict[tuple[str, bool], Prepared] = {}
        # What the last look at the table saw past the jobs it ran: (id, next run) in order, and the instant
        # before which they are all the active jobs there are (None: unknown). A pass whose due jobs are all known
        # runs them without looking again; any job (re)scheduled before that instant forgets it (see _arm).
        self._ahead: list[tuple[int, datetime]] = []
        self._ahead_until: datetime | None = None
        self._arms = 0  # _arm calls so far: a look that raced with one doesn't claim to know what's ahead
        self._due_queries: dict[tuple, Prepared] = {}
        self._cancels: dict[int, Prepared] = {}

    def register(self, name: str, handler: JobHandler) -> None:
        if name in self._handlers:
            raise ValueError(f"job handler {name!r} registered twice")
        self._handlers[name] = handler

    # -- defining jobs ------------------------------------------------------------------------------------------

    def next_after(self, schedule: str, spec: str, after: datetime) -> datetime | None:
        """The first run strictly after ``after`` (UTC in, UTC out)."""
        local = self._clock.local(after)
        if schedule == "once":
            return None
        if schedule == "daily":
            m = _HHMM.match(spec)
            if not m:
                raise ScheduleError(f"daily time must look like 09:30, not {spec!r}")
            candidate = local.replace(hour=int(m.group(1)), minute=int(m.group(2)), second=0, microsecond=0)
            if candidate <= local:
                candidate = (candidate + timedelta(days=1)).replace(hour=int(m.group(1)), minute=int(m.group(2)))
            return candidate.astimezone(after.tzinfo)
        if schedule == "cron":
            if not croniter.is_valid(spec):
                raise ScheduleError(f"not a cron expression: {spec!r}")
            return croniter(spec, local).get_next(datetime).astimezone(after.tzinfo)
        raise ScheduleError(f"unknown schedule {schedule!r}")

    async def schedule(
        self,
        key: str,
        handler: str,
        *,
        at: datetime | None = None,
        daily: str | None = None,
        cron: str | None = None,
        payload: dict | None = None,
        room_id: str | None = None,
        misfire_grace_s: int = 3600,
        session: AsyncSession | None = None,
        ensure: bool = False,
    ) -> datetime | None:
        """Create or replace the job ``key``. Give exactly one of ``at``, ``daily`` ("HH:MM"), ``cron``.

        Pass the handler's ``session`` to commit the job with the rest of the handler's work. With ``ensure``,
        an existing job is left exactly as it is (for skills that make sure their jobs exist at every start:
        replacing would lose a due catch-up run, a pause or a cancellation).
        """
        if handler not in self._handlers:
            raise ScheduleError(f"no job handler named {handler!r}")
        if sum(x is not None for x in (at, daily, cron)) != 1:
            raise ScheduleError("give exactly one of at=, daily=, cron=")
        now = self._clock.now()
        if at is not None:
            if at.tzinfo is None:
                raise ScheduleError("at= needs an aware datetime")
            schedule_kind, spec, next_run = "once", "", at
        elif daily is not None:
            schedule_kind, spec = "daily", daily.strip()
            next_run = self.next_after("daily", spec, now)
        else:
            schedule_kind, spec = "cron", cron.strip()  # type: ignore[union-attr]
            next_run = self.next_after("cron", spec, now)

        row = {"key": key, "handler": handler, "payload": payload or {}, "schedule": schedule_kind, "spec": spec,
               "next_run_at": next_run, "status": "active", "misfire_grace_s": misfire_grace_s, "last_error": None,
               "room_id": room_id, "attempts": 0, "run_count": 0, "created_at": now}

        async def write(s: AsyncSession) -> None:
            nonlocal next_run
            conn = await s.connection()
            result = await self._upsert(conn.dialect.name, ensure).run(conn, row)
            if ensure and result.rowcount == 0:  # it exists: leave it exactly as it is
                existing = (await _BY_KEY.run(conn, {"job_key": key})).one()
                next_run = existing.next_run_at if existing.status == "active" else None

        if session is not None:
            await write(session)
            self._arm_after_commit(session, next_run)
        else:
            async with self._sessions() as s, s.begin():
                await write(s)
            self._arm(next_run)
        return next_run

    def _upsert(self, dialect: str, ensure: bool) -> Prepared:
        """INSERT … ON CONFLICT (key): replace the job's definition, or (ensure) keep the existing one."""
        cached = self._upserts.get((dialect, ensure))
        if cached is None:
            stmt = insert_for(dialect, _JOBS)
            if ensure:
                stmt = stmt.on_conflict_do_nothing(index_elements=["key"])
            else:
                stmt = stmt.on_conflict_do_update(index_elements=["key"],
                                                  set_={c: stmt.excluded[c] for c in _REDEFINED})
            cached = self._upserts[(dialect, ensure)] = Prepared(stmt)
        return cached

    async def cancel(self, key: str, session: AsyncSession | None = None) -> bool:
        return await self._set_status(key, "cancelled", session)

    async def cancel_many(self, keys: list[str], session: AsyncSession) -> int:
        """Cancel every active or paused job among ``keys`` in one statement (in the caller's transaction)."""
        if not keys:
            return 0
        conn = await session.connection()
        if len(keys) > 8:
            return (await conn.execute(_CANCEL, {"keys": keys})).rowcount
        stmt = self._cancels.get(len(keys))
        if stmt is None:  # one statement per list length, so it can be prepared
            stmt = self._cancels[len(keys)] = Prepared(
                update(_JOBS).where(_JOBS.c.key.in_([bindparam(f"key{i}") for i in range(len(keys))]),
                                    or_(_JOBS.c.status == "active", _JOBS.c.status == "paused"))
                .values(status="cancelled"))
        return (await stmt.run(conn, {f"key{i}": k for i, k in enumerate(keys)})).rowcount

    async def pause(self, key: str, session: AsyncSession | None = None) -> bool:
        return await self._set_status(key, "paused", session)

    async def resume(self, key: str, session: AsyncSession | None = None) -> bool:
        async def write(s: AsyncSession) -> bool:
            job = (await s.execute(select(ScheduledJob).where(ScheduledJob.key == key))).scalar_one_or_none()
            if job is None or job.status != "paused":
                return False
            job.status = "active"
            if job.schedule != "once":
                job.next_run_at = self.next_after(job.schedule, job.spec, self._clock.now())
            resumed.append(job.next_run_at)
            return True

        resumed: list[datetime | None] = []
        if session is not None:
            done = await write(session)
            if resumed:
                self._arm_after_commit(session, resumed[0])
            return done
        async with self._sessions() as s, s.begin():
            done = await write(s)
        if resumed:
            self._arm(resumed[0])
        return done

    async def _set_status(self, key: str, status: str, session: AsyncSession | None) -> bool:
        stmt = update(ScheduledJob).where(ScheduledJob.key == key, ScheduledJob.status == "active").values(status=status)
        if session is not None:
            return (await session.execute(stmt)).rowcount > 0
        async with self._sessions() as s, s.begin():
            return (await s.execute(stmt)).rowcount > 0

    async def get(self, key: str, session: AsyncSession | None = None) -> ScheduledJob | None:
        stmt = select(ScheduledJob).where(ScheduledJob.key == key)
        if session is not None:
            return (await session.execute(stmt)).scalar_one_or_none()
        async with self._sessions() as s:
            return (await s.execute(stmt)).scalar_one_or_none()

    async def jobs(self, handler: str, session: AsyncSession, statuses: tuple[str, ...] | None = None
                   ) -> list[ScheduledJob]:
        """The jobs that run ``handler`` (``statuses``: only those), by key: what a skill lists as its own."""
        stmt = select(ScheduledJob).where(ScheduledJob.handler == handler)
        if statuses is not None:
            stmt = stmt.where(ScheduledJob.status.in_(statuses))
        return list((await session.execute(stmt.order_by(ScheduledJob.key))).scalars())

    # -- running ------------------------------------------------------------------------------------------------

    async def start(self, services: Services, poll_s: float | None = None) -> None:
        """``poll_s``: also look for new jobs this often — for jobs another process wrote (the CSV import), which
        this process's timer cannot know about. Live only; virtual time needs no polling."""
        self.services = services
        self._started = True
        await self._rearm()
        if poll_s:
            async def poll() -> None:
                if not self._started:
                    return
                try:
                    await self._rearm()
                except Exception as exc:  # the database is away: the next poll tries again
                    log.warning("scheduler poll failed: %s", exc)
                finally:
                    self._poll = self._clock.call_later(poll_s, poll, name="scheduler-poll")

            self._poll = self._clock.call_later(poll_s, poll, name="scheduler-poll")

    def stop(self) -> None:
        self._started = False
        if self._poll is not None:
            self._poll.cancel()
            self._poll = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm_after_commit(self, session: AsyncSession, when: datetime | None) -> None:
        """Arm once the caller's transaction is committed: armed earlier, a real timer could fire before the row
        is visible, find nothing due, and not look again."""
        if when is None:
            return
        after_commit(session, lambda: self._arm(when))

    def _arm(self, when: datetime | None) -> None:
        """A job (new, re-scheduled, resumed, recurring) runs at ``when``: make sure a pass looks by then."""
        if when is None:
            return
        self._arms += 1
        if self._ahead_until is not None and when < self._ahead_until:
            self._ahead_until = None  # the rows known ahead are no longer all there is before their horizon
        if not self._started:
            return
        if self._running:  # the running pass arms the timer when it finishes: remember the earliest asked for
            if self._armed_while_running is None or when < self._armed_while_running:
                self._armed_while_running = when
            return
        self._set_timer(when)

    def _set_timer(self, when: datetime | None) -> None:
        if when is None or not self._started:
            return
        if self._timer is not None and not self._timer.cancelled and self._timer_at is not None and self._timer_at <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._clock.call_at(when, self._run_due, name="scheduler")

    async def _rearm(self) -> None:
        self._ahead_until = None  # jobs may have come from elsewhere (another process: the CSV import)
        async with self._sessions() as s:
            nxt = (await s.execute(self._runnable(select(func.min(_JOBS.c.next_run_at))
                                                  .where(_JOBS.c.status == "active")), self._account_param())).scalar()
        if nxt is not None:
            self._arm(nxt)

    def set_account(self, account_id: str | None) -> None:
        """The account this process speaks as (known at login): look again for what it may now run."""
        changed = account_id != self.account_id
        self.account_id = account_id
        self._ahead_until = None
        if changed and self.shared:
            self._arm(self._clock.now())

    def _runnable(self, stmt):  # type: ignore[no-untyped-def]
        """Only jobs this process may run: all of them, unless the database is shared by several accounts."""
        if not self.shared:
            return stmt
        if not self.account_id:  # not logged in yet: no room is known to be ours
            return stmt.where(_JOBS.c.room_id.is_(None))
        mine = select(AccountRoom.room_id).where(AccountRoom.account_id == bindparam("account_id"))
        return stmt.where(or_(_JOBS.c.room_id.is_(None), _JOBS.c.room_id.in_(mine)))

    def _account_param(self) -> dict:
        return {"account_id": self.account_id} if self.shared and self.account_id else {}

    def _due_query(self, limit: int) -> Prepared:
        """The per-pass query (earliest active jobs first), built once per variant."""
        variant = (self.shared, bool(self.account_id), limit)
        stmt = self._due_queries.get(variant)
        if stmt is None:
            stmt = self._due_queries[variant] = Prepared(self._runnable(
                select(_JOBS.c.id, _JOBS.c.next_run_at)
                .where(_JOBS.c.status == "active", _JOBS.c.next_run_at.is_not(None))
                .order_by(_JOBS.c.next_run_at, _JOBS.c.id).limit(limit)))
        return stmt

    async def _run_due(self) -> None:
        """Run what is due, then arm the timer for the next job. One indexed query per pass, bounded by BATCH
        (it starts with a few rows and asks for more only when all of them are due): the first row past the due
        ones gives the next run time, so a tick's work follows the due jobs, not the size of the table."""
        self._timer = None
        self._timer_at = None
        if self._running:
            return
        self._running = True
        self._armed_while_running = None
        next_at: datetime | None = None
        limit = 8  # usually one job is due: a few rows suffice, more only when all of them are due
        try:
            while True:
                now = self._clock.now()
                due = self._known_due(now)
                if due is None:  # look at the table
                    arms = self._arms
                    async with self._sessions() as s:
                        rows = (await self._due_query(limit).run(await s.connection(), self._account_param())).all()
                    due = [r.id for r in rows if r.next_run_at <= now][:BATCH]
                    if len(due) == len(rows) == limit and limit <= BATCH:
                        limit = BATCH + 1  # all due: look further before running them, so a batch is a batch
                        continue
                    self._ahead = [(r.id, r.next_run_at) for r in rows[len(due):]]
                    if self.shared or arms != self._arms:
                        self._ahead_until = None  # other processes add jobs; or one was added during the look
                    elif len(rows) < limit:
                        self._ahead_until = _END_OF_TIME  # the look saw every active job
                    else:
                        self._ahead_until = rows[-1].next_run_at  # more may share the last row's instant
                if not due:
                    next_at = self._ahead[0][1] if self._ahead else None
                    break
                for job_id in due:
                    await self._run_one(job_id, now)  # new run times (recurring, retries) are remembered by _arm
                if len(due) == BATCH:
                    continue  # maybe more are due
                limit = 8
                candidates = [self._ahead[0][1]] if self._ahead else []
                if self._armed_while_running is not None:
                    candidates.append(self._armed_while_running)
                    self._armed_while_running = None
                next_at = min(candidates, default=None)
                if next_at is None or next_at > self._clock.now():
                    break
        except Exception as exc:  # the database is away (or worse): look again in a while, never go quiet
            self._ahead_until = None
            log.error("scheduler pass failed (%s: %s); trying again in %d s", type(exc).__name__, exc, RETRY_S)
            next_at = self._clock.now() + timedelta(seconds=RETRY_S)
        finally:
            self._running = False
        if self._started:
            self._set_timer(next_at)  # (a time the pass knows of: not news, unlike _arm)
            self._set_timer(self._armed_while_running)  # asked for by a job that ran after the last look

    def _known_due(self, now: datetime) -> list[int] | None:
        """The jobs due now, if the last look saw all of them (then taken off what's known ahead); else None."""
        if self._ahead_until is None or not self._ahead or self._ahead[0][1] > now:
            return None
        n = 0
        while n < len(self._ahead) and n < BATCH and self._ahead[n][1] <= now:
            n += 1
        if self._ahead[n - 1][1] >= self._ahead_until:
            return None  # jobs the look didn't return may share that instant
        due = [job_id for job_id, _ in self._ahead[:n]]
        del self._ahead[:n]
        return due

    async def _run_one(self, job_id: int, now: datetime) -> None:
        assert self.services is not None
        async with self._sessions() as s:
            conn = await s.connection()
            # The claim: the row stays locked until this run's effects and bookkeeping commit, and another process
            # racing for it skips it (PostgreSQL). Once committed, next_run_at has moved on, so it isn't due there
            # either. (SQLite renders no lock: one process, one writer.)
            job = (await _CLAIM.run(conn, {"job_id": job_id})).first()
            if job is None or job.status != "active" or job.next_run_at is None or job.next_run_at > now:
                return
            due = job.next_run_at
            late = (now - due).total_seconds()
            following = self.next_after(job.schedule, job.spec, now) if job.schedule != "once" else None
            landing = self._clock.horizon
            if following is not None and landing - following > CLOCK_JUMP:
                log.info("job %s: the clock jumps to %s; its runs until then are skipped (next run from there)",
                         job.key, landing.isoformat())
                following = self.next_after(job.schedule, job.spec, landing)
            skill_name = job.handler.split(".")[0]
            if late > job.misfire_grace_s:
                log.warning("job %s was due %s, %.0f s ago (grace %d s): skipped", job.key, due.isoformat(), late,
                            job.misfire_grace_s)
                self.services.activity.record("job", skill=skill_name,
                                              detail={"job": job.key, "outcome": "missed", "due": due.isoformat()})
                await _MISSED.run(conn, {"job_id": job_id, "following": following,
                                             "new_status": "active" if following else "missed"})
                await s.commit()
                self._arm(following)
                return
            handler = self._handlers.get(job.handler)
            if handler is None:
                await conn.execute(update(_JOBS).where(_JOBS.c.id == job_id).values(
                    status="failed", last_error=f"no handler {job.handler!r} in this version"))
                log.error("job %s: no handler %r; marked failed", job.key, job.handler)
                await s.commit()
                return
            ctx = Context(self.services, job=JobRun(job.key, dict(job.payload or {}), due), skill=skill_name,
                          session=s)
            try:
                await handler(ctx)
                if conn.closed:  # the handler committed along the way (the tier pass commits in chunks)
                    conn = await s.connection()
                ran = await _RAN.run(conn, {
                    "job_id": job_id, "was_schedule": job.schedule, "was_spec": job.spec, "was_next": due,
                    "now": now, "following": following, "new_status": "active" if following else "done"})
                if ran.rowcount == 0:  # the handler re-scheduled (or cancelled) its own key: that stands
                    await _TOUCHED.run(conn, {"job_id": job_id, "now": now})
                await s.commit()
                if ran.rowcount:
                    self._arm(following)
                self.fired.append((job.key, due))
                self.services.activity.record("job", skill=skill_name,
                                              detail={"job": job.key, "outcome": "ok", "due": due.isoformat()})
            except Exception as exc:
                await s.rollback()
                self._report(exc, job.key)
                await self._failed(job_id, exc, following, job.attempts)

    async def _failed(self, job_id: int, exc: Exception, following: datetime | None, attempts: int) -> None:
        async with self._sessions() as s, s.begin():
            job = await s.get(ScheduledJob, job_id)
            if job is None:
                return
            job.last_error = f"{type(exc).__name__}: {exc}"[:1000]
            job.attempts = attempts + 1
            if following is not None:
                job.next_run_at = following  # a recurring job tries again at its next slot
            elif job.attempts >= MAX_ATTEMPTS:
                job.status = "failed"
            else:
                job.next_run_at = self._clock.now() + timedelta(seconds=backoff_delay(job.attempts, 60))
        if job.status == "active":
            self._arm(job.next_run_at)

    def _report(self, exc: Exception, key: str) -> None:
        self._clock.on_error(exc, {"job": key})
