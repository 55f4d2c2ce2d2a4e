"""The knowledge base in service: built from the files, swapped whole on reload, never taken down by a bad save.

A reload builds a complete new index off the event loop (a thread) and then swaps one reference, so questions
being answered meanwhile finish on the old index and the next ones use the new. If the files have any problem,
the new build is thrown away and the last good knowledge base stays in service; the problems are kept for
``/kb reload`` and logged with file and line. (At start, with nothing good yet, the valid entries are served.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from skills.faq.knowledge.calibrate import calibrate
from skills.faq.knowledge.entries import Entry, Problem
from skills.faq.knowledge.files import MAX_FILE_BYTES, load_knowledge, signature
from skills.faq.knowledge.index import Hit, Index
from skills.faq.knowledge.text import Analyzer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    index: Index
    files: tuple[str, ...]
    built_s: float  # how long the build took

    @property
    def entries(self) -> list[Entry]:
        return self.index.entries


@dataclass(frozen=True)
class ReloadResult:
    ok: bool  # the files were clean and are now in service
    problems: tuple[Problem, ...]
    entries: int  # entries in service afterwards
    changed: bool = True


def build(folder: Path, max_file_bytes: int = MAX_FILE_BYTES) -> tuple[Snapshot, list[Problem]]:
    """Parse every file and build the index (CPU-bound: run it in a thread)."""
    started = time.perf_counter()
    kb = load_knowledge(folder, max_file_bytes=max_file_bytes)
    index = Index(kb.entries, Analyzer(kb.synonyms, kb.user_words))
    calibrate(index)
    return Snapshot(index, tuple(kb.files), time.perf_counter() - started), kb.problems


# Called with a fresh snapshot before it goes into service (e.g. to add dense vectors); may raise.
Enricher = Callable[[Snapshot], Awaitable[None]]


@dataclass
class KnowledgeBase:
    folder: Path
    current: Snapshot | None = None
    problems: tuple[Problem, ...] = ()  # of the last attempt
    enrich: Enricher | None = None
    max_file_bytes: int = MAX_FILE_BYTES  # a bigger file is a problem, not loaded
    _signature: tuple = ()
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def search(self, text: str, k: int = 3, **kw) -> list[Hit]:
        snap = self.current  # one read: a reload swapping meanwhile can't mix two indexes in one answer
        return snap.index.search(text, k, **kw) if snap is not None else []

    @property
    def entries(self) -> list[Entry]:
        return self.current.entries if self.current is not None else []

    def entry(self, entry_id: str) -> Entry | None:
        return next((e for e in self.entries if e.id == entry_id), None)

    def changed_on_disk(self) -> bool:
        return signature(self.folder) != self._signature

    async def reload(self, *, force: bool = True) -> ReloadResult:
        async with self._lock:  # one build at a time; a poll during a /kb reload waits and then sees no change
            sig = signature(self.folder)
            if not force and sig == self._signature:
                return ReloadResult(not self.problems, self.problems, len(self.entries), changed=False)
            self._signature = sig
            snap, problems = await asyncio.to_thread(build, self.folder, self.max_file_bytes)
            self.problems = tuple(problems)
            for p in problems:
                log.warning("knowledge: %s", p)
            if problems and self.current is not None:
                log.error("knowledge: %d problem(s); the last good knowledge base (%d entries) stays in service",
                          len(problems), len(self.entries))
                return ReloadResult(False, self.problems, len(self.entries))
            if self.enrich is not None:
                try:
                    await self.enrich(snap)
                except Exception as exc:  # dense vectors are an extra: lexical retrieval still works without
                    log.warning("knowledge: enriching the index failed (%s); serving it without", exc)
            self.current = snap
            log.info("knowledge: %d entries from %d files in service (built in %.2f s)", len(snap.entries),
                     len(snap.files), snap.built_s)
            return ReloadResult(not problems, self.problems, len(snap.entries))
