"""What the knowledge files hold, once parsed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Entry:
    id: str  # stable: 编号 from the file, else "<file stem>:<question>"
    question: str  # the standard question (the heading)
    answer: str
    similar: tuple[str, ...] = ()  # 相似问法
    tags: tuple[str, ...] = ()
    rooms: tuple[str, ...] = ()  # 适用群: room ids or room tags; empty: every chat
    source: str = ""  # file:line, for operators

    @property
    def questions(self) -> tuple[str, ...]:
        return (self.question, *self.similar)

    def visible_in(self, room_id: str | None, room_tags: tuple[str, ...] = ()) -> bool:
        """Scoped entries answer only in their rooms (by id or tag); 1-on-1 chats see every entry."""
        if not self.rooms or room_id is None:
            return True
        return room_id in self.rooms or any(t in self.rooms for t in room_tags)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a knowledge file, with where, for the log and for the admin who runs /kb reload."""

    file: str
    line: int  # 0: the whole file
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"
