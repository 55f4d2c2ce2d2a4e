"""Console: chat with the bot in a terminal, no WeChat account needed.

You are a member of a simulated group; lines starting with ':' steer the simulation (``:help`` lists them).
The chat stays readable: log lines go to a file (bot/__main__.py sets it up; warnings show as one short note), and
while the bot is still working on an answer — handling it, or holding it for pacing or a coalescing window of up
to a minute — 「（小助手正在输入…）」 is shown once, so a wait doesn't look like a hang.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from typing import IO

from bot.clean import clean_event, identifier, topic
from bot.clean import person as clean_person
from bot.clock import Clock
from bot.config import Config
from bot.events import Event, MembersJoined, MembersLeft, MessageReceived, OutgoingMessage, Person
from bot.http import FieldError
from bot.transports.base import EventSink

HELP = """\
  直接输入文字 = 以当前身份在当前群里发言（含 @{bot} 即为 @机器人）
  :as ID [名字]      切换身份           :admin          切换为配置里的第一个管理员
  :room ID [群名]    进入某个群         :dm             与机器人私聊
  :join ID [名字]    有人入群（你邀请）  :leave ID        有人退群
  :who               当前身份和会话     :quit           退出"""


TYPING_AFTER_S = 1.5  # a wait longer than this gets the typing note (pacing alone is about a second)
TYPING_POLL_S = 0.25


class ConsoleTransport:
    def __init__(self, config: Config, clock: Clock, out: IO[str] | None = None) -> None:
        self.self_id = "bot"
        self._config = config
        self._clock = clock
        self._out = out or sys.stdout
        self.me = Person("console_user", "访客")
        self.room: str | None = "demo_room"
        self.topics: dict[str, str] = {"demo_room": "会员福利群（演示）"}
        self.names: dict[str, str] = {}
        self._typing_shown = False  # shown since the bot last said something

    def _print(self, line: str) -> None:
        self._out.write(line + "\n")
        self._out.flush()

    def note(self, text: str) -> None:
        """A line for the person at the keyboard that is not a chat message (a warning from the logs)."""
        self._print(f"（{text}）")

    async def show_typing(self, busy: Callable[[], bool]) -> None:
        """Until cancelled: while ``busy()`` has been true for TYPING_AFTER_S, say the bot is typing — once per
        wait (each message the bot sends starts a new one)."""
        waited = 0.0
        while True:
            await asyncio.sleep(TYPING_POLL_S)  # real time: the terminal's own pace, nothing to synchronise
            if not busy():
                waited = 0.0
                continue
            waited += TYPING_POLL_S
            if waited >= TYPING_AFTER_S and not self._typing_shown:
                self._print(f"（{self._config.bot.name}正在输入…）")
                self._typing_shown = True
                waited = 0.0

    async def send(self, message: OutgoingMessage) -> str | None:
        where = f"[群 {self.topics.get(message.room_id, message.room_id)}]" if message.room_id else "[私聊]"
        who = "" if message.room_id else f" → {self.names.get(message.user_id, message.user_id)}"
        self._print(f"{where} {self._config.bot.name}{who}: {message.text}")
        self._typing_shown = False  # the bot said something: a further wait is a new one
        return None

    async def start(self, sink: EventSink) -> None:
        self._print(f"控制台模式：你是「{self.me.name}」，在「{self.topics[self.room]}」。输入 :help 查看操作。")

    async def stop(self) -> None:
        return None

    def handle_line(self, line: str | bytes) -> Event | str | None:
        """One typed line to an event (cleaned: bot/clean.py), or to a note for the operator, or None to quit."""
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError:
                return "这一行不是 UTF-8 文本，没有处理。"
        try:
            result = self._interpret(line.strip())
            return clean_event(result) if isinstance(result, Event) else result
        except FieldError as exc:
            return f"这一行没有处理：{exc}"

    def _interpret(self, line: str) -> Event | str | None:
        now = self._clock.now()
        if not line.startswith(":"):
            if not line:
                return ""
            mention = f"@{self._config.bot.name}" in line
            return MessageReceived(at=now, sender=self.me, text=line, room_id=self.room,
                                   room_topic=self.topics.get(self.room) if self.room else None, mentions_bot=mention)
        word, *rest = line[1:].split() or [""]
        if word in ("quit", "exit", "q"):
            return None
        if word == "help":
            return HELP.format(bot=self._config.bot.name)
        if word == "as" and rest:
            me = clean_person(Person(rest[0], rest[1] if len(rest) > 1 else rest[0]), "身份")
            self.me = me
            self.names[me.id] = me.name
            return f"你现在是「{self.me.name}」({self.me.id})"
        if word == "admin":
            if not self._config.bot.admins:
                return ('config.toml 的 [bot] admins 里还没有管理员：写成 admins = ["console_user"]（你现在的身份），'
                        "重新启动后你就是管理员。")
            self.me = Person(self._config.bot.admins[0], "管理员")
            return f"你现在是管理员 {self.me.id}"
        if word == "room" and rest:
            self.room = identifier(rest[0], "群 ID")
            if len(rest) > 1:
                self.topics[self.room] = topic(" ".join(rest[1:]), "群名") or self.room
            return f"已进入群「{self.topics.get(self.room, self.room)}」"
        if word == "dm":
            self.room = None
            return "已切换到与机器人的私聊"
        if word == "join" and rest and self.room:
            person = Person(rest[0], rest[1] if len(rest) > 1 else rest[0])
            return MembersJoined(at=now, room_id=self.room, members=(person,),
                                 room_topic=self.topics.get(self.room), inviter_id=self.me.id)
        if word == "leave" and rest and self.room:
            return MembersLeft(at=now, room_id=self.room, member_ids=(rest[0],), room_topic=self.topics.get(self.room))
        if word == "who":
            return f"你是「{self.me.name}」({self.me.id})，在{'群「' + self.topics.get(self.room, self.room) + '」' if self.room else '私聊'}"
        return "看不懂这个操作，输入 :help 查看。"

    async def run(self, sink: EventSink) -> None:
        """Read the terminal until :quit or end of input (bytes: a line that is not UTF-8 is refused, not fatal)."""
        while True:
            line = await asyncio.to_thread(sys.stdin.buffer.readline)
            if not line:
                return
            result = self.handle_line(line)
            if result is None:
                return
            if isinstance(result, str):
                if result:
                    self._print(result)
                continue
            await sink(result)


class ConsoleLogNote(logging.Handler):
    """Warnings and errors in the console: one short line above the next input, never a traceback (that is in the
    log file, named once at start)."""

    def __init__(self, console: ConsoleTransport, log_file: str) -> None:
        super().__init__(logging.WARNING)
        self._console = console
        self._log_file = log_file

    def emit(self, record: logging.LogRecord) -> None:
        try:
            first = record.getMessage().splitlines()[0][:160] if record.getMessage() else record.levelname
            level = "错误" if record.levelno >= logging.ERROR else "警告"
            self._console.note(f"{level}：{first} — 详见 {self._log_file}")
        except Exception:  # a log note must never break the chat
            self.handleError(record)
