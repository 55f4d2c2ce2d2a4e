"""A real local HTTP server speaking the OpenAI chat-completions and embeddings API (test code, aiohttp).

Chat: answers from the first entry it was given, or says 无法回答 when the question mentions none of the
entries' key words, and hangs (until released) when the question contains 慢. Embeddings: a tiny deterministic
"semantic" space: one dimension per concept, with words the lexical index can't relate (寄出 ≈ 发货).
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

CONCEPTS = [("发货", "寄出", "发出"), ("物流", "快递", "到哪"), ("退货", "退回"), ("退款", "钱"), ("发票", "开票")]


def embed(text: str) -> list[float]:
    return [1.0 if any(w in text for w in words) else 0.0 for words in CONCEPTS] + [0.01]


class FakeOpenAI:
    def __init__(self) -> None:
        self.chat_requests: list[dict] = []
        self.embedding_inputs: list[str] = []
        self.release = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"

    async def stop(self) -> None:
        self.release.set()
        if self.runner is not None:
            await self.runner.cleanup()

    async def chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.chat_requests.append(body)
        user = body["messages"][-1]["content"]
        question = user.rsplit("用户的问题：", 1)[-1]
        if "慢" in question:
            await self.release.wait()
        answers = re.findall(r"答案：(.*)", user)
        covered = any(w in question for words in CONCEPTS for w in words)
        content = f"亲，{answers[0]}" if covered and answers else "无法回答"
        return web.json_response({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        self.embedding_inputs.extend(inputs)
        return web.json_response({
            "object": "list", "model": body["model"], "usage": {"prompt_tokens": 1, "total_tokens": 1},
            "data": [{"object": "embedding", "index": i, "embedding": embed(t)} for i, t in enumerate(inputs)],
        })
