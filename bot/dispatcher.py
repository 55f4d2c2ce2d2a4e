"""The dispatcher: one pipeline for every event.

receive → keep member/room records → command router → skills' hooks by priority → record → commit.
Each handled event gets exactly one database session, committed when the pipeline finishes and rolled back if a
handler raised. Every exception goes to one error hook with context; a failing skill never takes the bot down.

``handle`` runs one event to completion (replay, tests). ``submit`` is for live transports: events of one chat
are handled strictly in order, different chats concurrently (bounded).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from bot.commands import CommandRouter
from bot.context import Context, Services
from bot.events import Event, MembersJoined, MembersLeft, MessageReceived
from bot.skill import HookSpec
from bot.transports.base import Done, Mark

log = logging.getLogger(__name__)

ErrorHook = Callable[[BaseException, dict], None]


class Dispatcher:
    def __init__(
        self, services: Services, router: CommandRouter, hooks: list[HookSpec], error_hook: ErrorHook,
        max_concurrent_chats: int = 32,
    ) -> None:
        self.services = services
        self.router = router
        by_event: dict[str, list[HookSpec]] = {"message": [], "join": [], "leave": []}
        for hook in hooks:
            by_event[hook.event].append(hook)
        # stable sort: equal priorities keep the order skills were loaded in
        self._hooks = {k: sorted(v, key=lambda h: h.priority) for k, v in by_event.items()}
        self._error_hook = error_hook
        self._queues: dict[str, deque[tuple[Event, Done | None, Mark | None]]] = {}
        self._workers: set[asyncio.Task] = set()
        self._slots = asyncio.Semaphore(max_concurrent_chats)
        self.handled = 0

    # -- live: ordered per chat -----------------------------------------------------------------------------------

    def submit(self, event: Event, done: Done | None = None, mark: Mark | None = None) -> None:
        """Queue ``event``. ``mark(session)``, if given, runs in the event's transaction just before its commit (a
        transport noting the event handled, atomically with what handling it changed). ``done(handled, marked)``
        once its turn is over: handled when the pipeline ran to its end (committed, or rolled back and reported),
        not when it was cut off (the bot stopping under it: nothing committed); marked when ``mark`` was committed
        with it (it runs only when the event opened a transaction of its own)."""
        key = event.chat_key
        queue = self._queues.get(key)
        if queue is not None:
            queue.append((event, done, mark))  # a worker for this chat is running and will take it
            return
        self._queues[key] = deque([(event, done, mark)])
        task = asyncio.get_running_loop().create_task(self._work(key), name=f"chat:{key}")
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)

    async def _work(self, key: str) -> None:
        queue = self._queues[key]
        try:
            async with self._slots:
                while queue:
                    event, done, mark = queue[0]
                    handled = marked = False
                    try:
                        marked = await self.handle(event, mark)
                        handled = True
                    finally:
                        queue.popleft()
                        if done is not None:
                            done(handled, marked)
        finally:
            self._queues.pop(key, None)
            for _, done, _ in queue:  # cut off before their turn
                if done is not None:
                    done(False, False)

    @property
    def busy(self) -> bool:
        """Live: some submitted event is still being handled (the console shows "typing" meanwhile)."""
        return bool(self._queues)

    async def join(self) -> None:
        """Wait until every submitted event has been handled."""
        while self._workers:
            await asyncio.gather(*list(self._workers), return_exceptions=True)

    # -- one event ------------------------------------------------------------------------------------------------

    async def handle(self, event: Event, mark: Mark | None = None) -> bool:
        """Run the pipeline for ``event``; whether ``mark`` was committed with it."""
        self.handled += 1
        marked = False
        ctx = Context(self.services, event=event)
        try:
            if event.room_id is not None:
                await self.services.activity.note_account_room(event.room_id, event.at)
            if event.room_id is not None and not event.room_topic:
                # not every platform event names the room: fill in what we know, so every skill sees it
                topic = await self.services.activity.room_topic(event.room_id)
                if topic:
                    ctx.event = event = replace(event, room_topic=topic)
            if isinstance(event, MessageReceived):
                await self._message(ctx, event)
            elif isinstance(event, MembersJoined):
                await self._joined(ctx, event)
            elif isinstance(event, MembersLeft):
                await self._left(ctx, event)
            # only into a transaction the event has anyway: one opened just for the mark would cost more than the
            # event (the transport marks the others in batches; they committed nothing a second run could repeat)
            marking = mark is not None and ctx.has_session
            if marking:
                ctx.skill = "core"
                await mark(ctx.session)  # type: ignore[misc]
            await ctx.commit()
            marked = marking
        except Exception as exc:
            await self._rollback(ctx)
            self._error_hook(exc, self._describe(event, ctx.skill))
        finally:
            try:
                await ctx.close()
            except Exception as exc:  # the database went away mid-event: report, keep going
                self._error_hook(exc, {"during": "close", **self._describe(event, ctx.skill)})
        await self.services.activity.flush_if_full()
        return marked

    async def _rollback(self, ctx: Context) -> None:
        try:
            await ctx.rollback()
        except Exception as exc:  # the database itself is down: report, never crash
            self._error_hook(exc, {"during": "rollback", **self._describe(ctx.event, ctx.skill)})

    async def _message(self, ctx: Context, event: MessageReceived) -> None:
        s = self.services
        s.activity.seen(event.sender, event.at, event.room_id, event.room_topic)
        if event.room_id is not None and event.sender.id != s.bot_id:
            s.governor.saw_message(event.room_id, event.at)  # a lively room holds scheduled messages back
        try:
            ctx.skill = "core"
            handled = await self.router.handle(ctx)
            if not handled:
                await self._run_hooks("message", ctx)
        finally:
            ctx.addressed = ctx.addressed or event.is_direct or event.mentions_bot
            detail = {"text": event.text[:2000]} if ctx.addressed or s.config.activity.chatter_text else {}
            detail["len"] = len(event.text)
            if ctx.addressed:
                detail["to_bot"] = True
            s.activity.record("message", room_id=event.room_id, member_id=event.sender.id, detail=detail,
                              at=event.at)

    async def _joined(self, ctx: Context, event: MembersJoined) -> None:
        act = self.services.activity
        for person in event.members:
            act.joined(event.room_id, person, event.at, event.inviter_id, event.room_topic)
            act.record("join", room_id=event.room_id, member_id=person.id, at=event.at,
                       detail={"inviter": event.inviter_id} if event.inviter_id else None)
        await self._run_hooks("join", ctx)

    async def _left(self, ctx: Context, event: MembersLeft) -> None:
        act = self.services.activity
        for member_id in event.member_ids:
            act.left(event.room_id, member_id, event.at)
            act.record("leave", room_id=event.room_id, member_id=member_id, at=event.at)
        await self._run_hooks("leave", ctx)

    async def _run_hooks(self, kind: str, ctx: Context) -> None:
        for hook in self._hooks[kind]:
            ctx.skill = hook.skill
            try:
                await self._isolated(hook, ctx)
            except Exception as exc:
                self._error_hook(exc, self._describe(ctx.event, hook.skill))
                continue
            if ctx.stopped or hook.block:
                break

    @staticmethod
    async def _isolated(hook: HookSpec, ctx: Context) -> None:
        """Run a hook so that its failure undoes only its own writes.

        When an earlier hook has written, its work is committed first (what a savepoint would keep anyway), so a
        plain rollback loses nothing but the failing hook's work — and a hook may release the session before a
        network call (ctx.release_session) without a savepoint left open under it.
        """
        # never ctx.session here: opening one for every chatter message costs ~60% throughput. A message an
        # earlier hook decided (staged, no write yet) counts as its work too.
        if ctx.has_uncommitted_work:
            await ctx.commit()
        try:
            await hook.handler(ctx)
        except Exception:
            await ctx.rollback()
            raise

    @staticmethod
    def _describe(event: Event, skill: str | None) -> dict:
        context = {"event": type(event).__name__, "skill": skill, "chat": event.chat_key, "at": event.at.isoformat()}
        if isinstance(event, MessageReceived):
            context["sender"] = event.sender.id
            context["text"] = event.text[:80]
        return context
