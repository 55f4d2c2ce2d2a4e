"""Staff-confirmed broadcasts (企业群发): a proactive message the governor lets go to a customer group (a scheduled
message, a campaign, a group-buy cut-off) joins a task for the group's owner staff member, who confirms it in
their WeCom client; the bot never speaks in the group itself. A campaign to a customer whose 微信客服 window is
closed joins a 1-on-1 task (``chat_type: single``) for a staff member who has them as a contact.

**One task per owner, not one per group.** The governor hands the broadcast's messages over one by one, paced;
each target is queued (``wecom_task_targets``, committed: a restart loses none) and, once no new target has come
for ``[wecom] task_gather_s`` (at most ``GATHER_MAX_S`` after the first), the queued targets become one
``add_msg_template`` per (owner, chat type, text): ``chat_id_list`` with every group of that owner, or
``external_userid`` with every customer of that staff member. Staff confirm one task, not fifty.

WeCom limits how many 群发 a target *receives* per month: counted here per (calendar month, group or customer),
persisted (``wecom_quota``) when the target is queued (so two tasks in flight can't both pass the check), and given
back when the target received nothing after all: its task was never made (WeCom's 45009, refused, in
``fail_list``), WeCom reported it failed (not a contact / group gone, or its receiving limit reached), or the task
expired unconfirmed. A target over ``[wecom] monthly_quota`` is left out with ``quota`` before WeCom is asked.
``poll`` (every ``POLL_S``) asks ``get_groupmsg_send_result`` for each waiting task (per msgid and owner, page by
page with the cursor) and records each target's outcome in the activity store (``group_send_result``: sent or
failed); the task is finished once every target is. A task staff leave unconfirmed for ``[wecom] task_poll_days``
is polled no more: ``expired`` (WeCom documents no expiry of its own). The dashboard and ``/schedule list`` show
the tasks per owner (群主 for group tasks, 员工 for 1-on-1 tasks).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.activity import ActivityLog
from bot.clock import Clock, TimerHandle
from bot.events import OutgoingMessage
from bot.transports.base import RefusedError, TransportError, UncertainDeliveryError
from bot.transports.wecom.api import WeComApi, WeComApiError
from storage import identity
from storage import wecom as store

log = logging.getLogger(__name__)

ADD = "/cgi-bin/externalcontact/add_msg_template"
RESULT = "/cgi-bin/externalcontact/get_groupmsg_send_result"
GROUP = "/cgi-bin/externalcontact/groupchat/get"
POLL_S = 600.0
GATHER_S = 60.0
GATHER_MAX_S = 600.0
RETRY_S = 120.0  # WeCom unreachable while making tasks: the queued targets wait this long, then are tried again
MAX_TARGETS = 1000  # per task (WeCom takes up to 2,000 groups or 10,000 customers)
MAX_PAGES = 100
POLL_DAYS = 7  # [wecom] task_poll_days: an unconfirmed task is polled this long, then expired
SENT = 1  # get_groupmsg_send_result status: 0 not yet, 1 sent, 2 not a friend, 3 already had a 群发 today
FAILED = (2, 3)
TARGET_KEY = {"group": "chat_id_list", "single": "external_userid"}
ROW_KEY = {"group": "chat_id", "single": "external_userid"}


class GroupSends:
    def __init__(self, api: WeComApi, sessions: async_sessionmaker[AsyncSession], clock: Clock,
                 activity: ActivityLog, monthly_quota: int, *, gather_s: float = GATHER_S,
                 poll_days: int = POLL_DAYS) -> None:
        self._api = api
        self._sessions = sessions
        self._clock = clock
        self._activity = activity
        self._quota = monthly_quota
        self._gather = timedelta(seconds=gather_s)
        self._poll_for = timedelta(days=poll_days)
        self._owners: dict[str, str] = {}  # chat_id → owner staff member
        self._timer: TimerHandle | None = None
        self._flush_timer: TimerHandle | None = None
        self._first_queued: datetime | None = None
        # one flush at a time: a second one (the timer again, while the first waits on WeCom) would read targets the
        # first has not marked yet and make their task twice
        self._flushing = asyncio.Lock()

    async def recover(self) -> int:
        """At start, before ``start``: targets the last run left ``creating`` (it stopped while WeCom was making
        their task, which may exist) become ``uncertain``: shown, never made again; how many."""
        now = self._clock.now()
        async with self._sessions() as session:
            rows = await store.creating_to_uncertain(session, now)
            await session.commit()
        for owner, chat_type, target in rows:
            self._activity.record("send_dropped", **await self._where(chat_type, target),
                                  detail={"reason": "uncertain", "owner": owner, "kind": "group_send"}, at=now)
        if rows:
            log.warning("企业群发: %d targets were being made into a task when the bot stopped; WeCom may have made "
                        "it, so it is not made again (shown as 不确定; the staff member can check their client)",
                        len(rows))
        return len(rows)

    def start(self) -> None:
        self._timer = self._clock.call_later(POLL_S, self._poll_again, name="wecom-groupsend-poll")
        self._arm(self._clock.now())  # targets queued before a restart are made into tasks

    def stop(self) -> None:
        for timer in (self._timer, self._flush_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._flush_timer = None

    def _month(self, at: datetime) -> str:
        """The quota month of ``at`` (local calendar month)."""
        return self._clock.local(at).strftime("%Y-%m")

    def knows_owner(self, chat_id: str, owner: str) -> None:
        self._owners[chat_id] = owner

    async def _owner(self, chat_id: str) -> str:
        owner = self._owners.get(chat_id)
        if owner is None:
            try:
                answer = await self._api.post(GROUP, {"chat_id": chat_id, "need_name": 0})
            except WeComApiError as exc:  # not a customer group of this corp (40050): asking again won't change it
                raise RefusedError("unknown_group", str(exc)) from None
            owner = (answer.get("group_chat") or {}).get("owner")
            if not isinstance(owner, str) or not owner:
                raise RefusedError("no_owner", "groupchat/get gave no owner")
            self._owners[chat_id] = owner
        return owner

    async def send(self, message: OutgoingMessage) -> str:
        """Queue the group (a room message) or the customer (a 1-on-1 message) for its owner's next task.
        RefusedError("quota") once the target's month is used up, ("no_channel") for a member who is no WeCom
        customer of any staff member."""
        now = self._clock.now()
        month = self._month(now)
        staff: dict[str, str] = {}
        if message.room_id is not None:
            chat_type, target, quota_key = "group", message.room_id, f"group:{message.room_id}"
        else:
            async with self._sessions() as session:
                externals = [v for k, v in await identity.of_member(session, message.user_id) if
                             k == "external_userid"] or [message.user_id]  # type: ignore[arg-type]
                staff = await store.followers(session, externals)
            reachable = [e for e in externals if e in staff]
            if not reachable:
                raise RefusedError("no_channel", "not a WeCom contact of any staff member")
            chat_type, target, quota_key = "single", reachable[0], f"customer:{reachable[0]}"
        async with self._sessions() as session:
            used = await store.quota_used(session, month, quota_key)
        if used >= self._quota:
            raise RefusedError("quota", f"{quota_key} had its {self._quota} 群发 this month")
        owner = await self._owner(target) if chat_type == "group" else staff[target]
        async with self._sessions() as session:
            row_id = await store.queue_target(session, owner[:128], chat_type, target, message.text, now)
            await store.count_quota(session, month, quota_key)
            await session.commit()
        self._arm(now)
        return f"task-target:{row_id}"

    # -- making the tasks -------------------------------------------------------------------------------------------

    def _arm(self, now: datetime, delay: timedelta | None = None) -> None:
        """Make the tasks once no target has come for the gathering time (at most GATHER_MAX_S after the first)."""
        if self._first_queued is None:
            self._first_queued = now
        due = min(now + (delay or self._gather), self._first_queued + timedelta(seconds=GATHER_MAX_S))
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        self._flush_timer = self._clock.call_at(max(due, now), self._flush_due, name="wecom-groupsend-tasks")

    async def _flush_due(self) -> None:
        self._flush_timer = None
        self._first_queued = None
        try:
            await self.flush()
        except TransportError as exc:  # unreachable or a passing fault: the targets stay queued, tried again
            log.warning("企业群发 tasks not made yet (%s): trying again in %.0f s", exc, RETRY_S)
            self._arm(self._clock.now(), timedelta(seconds=RETRY_S))

    async def flush(self) -> int:
        """Turn the queued targets into one task per (owner, chat type, text); how many tasks were made."""
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> int:
        async with self._sessions() as session:
            queued = await store.queued_targets(session)
        batches: dict[tuple[str, str, str], list[tuple[int, str]]] = defaultdict(list)
        for row_id, owner, chat_type, target, text in queued:
            batches[(owner, chat_type, text)].append((row_id, target))
        made = 0
        for (owner, chat_type, text), rows in batches.items():
            for start in range(0, len(rows), MAX_TARGETS):
                made += await self._make(owner, chat_type, text, rows[start:start + MAX_TARGETS])
        return made

    async def _make(self, owner: str, chat_type: str, text: str, rows: list[tuple[int, str]]) -> int:
        targets = list(dict.fromkeys(t for _, t in rows))  # the same group twice in a gathering: once in the task
        body = {"chat_type": chat_type, TARGET_KEY[chat_type]: targets, "sender": owner, "text": {"content": text}}
        async with self._sessions() as session:  # committed before WeCom is asked: a crash now never makes it twice
            await store.start_creating(session, [i for i, _ in rows])
            await session.commit()
        try:
            answer = await self._api.post(ADD, body, sending=True)
        except RefusedError as exc:  # WeCom's quota (45009): dropped, never retried in a loop
            await self._not_made(rows, chat_type, owner, exc.reason, "dropped")
            return 0
        except UncertainDeliveryError:  # it may have been made: never made twice
            await self._not_made(rows, chat_type, owner, "uncertain", "uncertain")
            return 0
        except WeComApiError as exc:  # refused for this task (a sender who is not the owner, ...): asking again won't do
            log.warning("企业群发 task for %s refused: %s", owner, exc)
            await self._not_made(rows, chat_type, owner, "task_refused", "failed")
            return 0
        except TransportError:  # not made (WeCom unreachable, a passing fault): queued again, tried again later
            async with self._sessions() as session:
                await store.creating_to_queued(session, [i for i, _ in rows])
                await session.commit()
            raise
        msgid = answer.get("msgid")
        if not isinstance(msgid, str) or not msgid:
            await self._not_made(rows, chat_type, owner, "task_refused", "failed")
            return 0
        msgid = msgid[:64]
        refused = {str(f) for f in answer.get("fail_list") or []}
        now = self._clock.now()
        async with self._sessions() as session:
            await store.add_group_send(session, msgid, owner, chat_type, targets[0], text, now)
            await store.task_made(session, [i for i, t in rows if t not in refused], msgid, "waiting", now)
            await store.task_made(session, [i for i, t in rows if t in refused], msgid, "failed", now)
            await store.give_back_quota(session, self._month, ids=[i for i, t in rows if t in refused])
            if all(t in refused for t in targets):  # nothing for staff to confirm: never waits (nor is polled)
                await store.finish_group_send(session, msgid, "failed", now)
            await session.commit()
        self._activity.record("group_send_task", room_id=targets[0] if chat_type == "group" and len(targets) == 1
                              else None, detail={"msgid": msgid, "owner": owner, "chat_type": chat_type,
                                                 "targets": len(targets), "refused": len(refused),
                                                 "status": "failed" if all(t in refused for t in targets)
                                                 else "waiting"}, at=now)
        return 1

    async def _not_made(self, rows: list[tuple[int, str]], chat_type: str, owner: str, reason: str,
                        status: str) -> None:
        now = self._clock.now()
        async with self._sessions() as session:
            await store.task_made(session, [i for i, _ in rows], None, status, now)
            if status != "uncertain":  # never made: nothing was sent (an uncertain task may have been)
                await store.give_back_quota(session, self._month, ids=[i for i, _ in rows])
            await session.commit()
        for _, target in rows:
            self._activity.record("send_dropped", **await self._where(chat_type, target),
                                  detail={"reason": reason, "owner": owner, "kind": "group_send"}, at=now)

    async def _where(self, chat_type: str, target: str) -> dict[str, str]:
        if chat_type == "group":
            return {"room_id": target}
        async with self._sessions() as session:
            return {"member_id": await identity.resolve(session, "external_userid", target) or target}

    # -- their results ----------------------------------------------------------------------------------------------

    async def _poll_again(self) -> None:
        self._timer = self._clock.call_later(POLL_S, self._poll_again, name="wecom-groupsend-poll")
        try:
            await self.poll()
        except TransportError as exc:  # the next poll tries again
            log.warning("企业群发 results not polled: %s", exc)

    async def _results(self, msgid: str, owner: str) -> list[dict]:
        rows: list[dict] = []
        cursor = ""
        for _ in range(MAX_PAGES):
            answer = await self._api.post(RESULT, {"msgid": msgid, "userid": owner, "limit": 1000,
                                                   **({"cursor": cursor} if cursor else {})})
            rows += [r for r in answer.get("send_list") or [] if isinstance(r, dict)]
            cursor = answer.get("next_cursor") or ""
            if not isinstance(cursor, str) or not cursor:
                break
        return rows

    async def poll(self) -> int:
        """Ask WeCom about every waiting task; how many finished (expired ones included)."""
        finished = await self._expire()
        async with self._sessions() as session:
            waiting = await store.waiting_group_sends(session)
        for msgid, owner, chat_type, _ in waiting:
            key = ROW_KEY.get(chat_type, "chat_id")
            try:
                rows = await self._results(msgid, owner)
            except WeComApiError as exc:  # this task's answer only: the other tasks are still asked about
                log.warning("企业群发 task %s not polled: %s", msgid, exc)
                continue
            outcomes = {r[key]: ("sent" if r.get("status") == SENT else "failed") for r in rows
                        if isinstance(r.get(key), str) and r.get("status") in (SENT, *FAILED)}
            if not outcomes:
                continue  # the staff member has not confirmed it yet
            now = self._clock.now()
            async with self._sessions() as session:
                changed = [(t, s) for t, s in outcomes.items()
                           if await store.target_outcome(session, msgid, t, s, now)]
                await store.give_back_quota(session, self._month, msgid=msgid,
                                            targets=[t for t, s in changed if s == "failed"])
                states = await store.task_targets(session, msgid)
                status = None
                if all(s != "waiting" for s in states.values()):
                    status = "sent" if "sent" in states.values() else "failed"
                    if not await store.finish_group_send(session, msgid, status, now):
                        status = None
                await session.commit()
            for target, outcome in changed:
                self._activity.record("group_send_result", **await self._where(chat_type, target),
                                      detail={"msgid": msgid, "owner": owner, "status": outcome}, at=now)
            if status is not None:
                finished += 1
        return finished

    async def _expire(self) -> int:
        """Tasks staff left unconfirmed for ``task_poll_days`` (their last poll was the one before): ``expired``,
        polled no more (WeCom documents no expiry of its own; without this they would be asked about every
        ``POLL_S`` for ever, and crowd out newer tasks from the poll's 200); their targets' quota is given back."""
        now = self._clock.now()
        async with self._sessions() as session:
            tasks = await store.expire_group_sends(session, now - self._poll_for, now)
            expired = []
            for msgid, owner, chat_type in tasks:
                targets = await store.expire_targets(session, msgid, now)
                await store.give_back_quota(session, self._month, msgid=msgid, targets=targets)
                expired += [(msgid, owner, chat_type, t) for t in targets]
            await session.commit()
        for msgid, owner, chat_type, target in expired:
            self._activity.record("group_send_result", **await self._where(chat_type, target),
                                  detail={"msgid": msgid, "owner": owner, "status": "expired"}, at=now)
        if tasks:
            log.info("企业群发: %d tasks left unconfirmed for %s expired", len(tasks), self._poll_for)
        return len(tasks)
