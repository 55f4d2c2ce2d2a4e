"""The optional LLM: phrase an answer strictly from retrieved entries, and embed texts for dense retrieval.

Any OpenAI-compatible endpoint, through the official ``openai`` package. Every call has a hard timeout and no
retries: a slow model must never hold up an answer the index already has. Callers fall back on any exception.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from skills.faq.knowledge.entries import Entry

REFUSAL = "无法回答"
SYSTEM = (
    "你是品牌会员群的客服助手。只根据下面给出的知识条目回答用户的问题，语气亲切、简洁（不超过 150 字）。"
    "不要编造条目里没有的信息（价格、时间、政策等）。"
    f"如果这些条目不能回答用户的问题，只回复“{REFUSAL}”四个字，不要多说。"
)


@dataclass(frozen=True)
class LlmSettings:
    enabled: bool = False  # off by default
    base_url: str = ""  # e.g. "http://127.0.0.1:8000/v1"
    model: str = ""  # chat model name
    api_key_env: str = "FAQ_LLM_API_KEY"  # the environment variable holding the key (never the key itself)
    timeout_s: float = 8.0
    context_entries: int = 3  # how many retrieved entries the model may answer from
    embeddings_model: str = ""  # set to also fuse dense retrieval (/v1/embeddings) with BM25; "" = off


class LlmClient:
    def __init__(self, settings: LlmSettings, api_key: str | None) -> None:
        from openai import AsyncOpenAI  # here, not at the top: the package costs ~47 MB and the LLM is optional

        self.settings = settings
        self.client = AsyncOpenAI(base_url=settings.base_url or None, api_key=api_key or "not-needed",
                                  timeout=settings.timeout_s, max_retries=0)

    async def phrase(self, question: str, entries: list[Entry]) -> str | None:
        """The model's answer from ``entries``, or None when it says they don't cover the question."""
        context = "\n\n".join(f"【条目{i}】问题：{e.question}\n答案：{e.answer}" for i, e in enumerate(entries, 1))
        response = await asyncio.wait_for(self.client.chat.completions.create(
            model=self.settings.model, temperature=0,
            messages=[{"role": "system", "content": SYSTEM},
                      {"role": "user", "content": f"知识条目：\n{context}\n\n用户的问题：{question}"}],
        ), self.settings.timeout_s)
        text = (response.choices[0].message.content or "").strip()
        if not text or REFUSAL in text[:12]:
            return None
        return text

    async def embed(self, texts: list[str], batch: int = 256) -> np.ndarray:
        """Unit-length vectors, one row per text."""
        rows: list[list[float]] = []
        for i in range(0, len(texts), batch):
            response = await asyncio.wait_for(self.client.embeddings.create(
                model=self.settings.embeddings_model, input=texts[i:i + batch]), self.settings.timeout_s)
            rows.extend(d.embedding for d in sorted(response.data, key=lambda d: d.index))
        matrix = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms == 0, 1, norms)

    async def aclose(self) -> None:
        await self.client.close()
