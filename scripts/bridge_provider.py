"""A reference bridge provider: copy this file to write the adapter between your WeChat access (a hosted protocol
service, an RPA, a desktop client driven by automation) and the bot. The contract it implements is in
docs/operators/going-live.md#bridge-providers.

As shipped, the "platform" is this terminal: what the bot sends is printed, and each line you type becomes a
member's message to the bot. It depends on aiohttp and the standard library only (not on the bot's code).

    BOT_BRIDGE_TOKEN=... BOT_BRIDGE_SECRET=... python scripts/bridge_provider.py --bot http://127.0.0.1:8080
    # then, in another terminal, the bot with the same values and BOT_BRIDGE_URL=http://127.0.0.1:9300

Typed lines (the room is r1, the member u1 "小李", unless you say otherwise):

    签到                       a message in the room
    u2 小王: /积分              a message from someone else
    dm: 怎么退货                a 1-on-1 message to the bot
    /join u3 小张   /leave u3   a member joins / leaves the room
    /login   /logout   /qr https://...   the account's session

To adapt it, keep the four HTTP endpoints and ``post_event`` (with ``sign``), and replace ``FakePlatform`` with
calls to your platform: its ``send`` must return the platform's message id, or raise ``NotLoggedIn`` (answered
503), ``RiskControl`` (answered 429) or any other exception (answered 500). Post an event for everything that
happens, a ``heartbeat`` at least every 60 s while logged in, and ``login_needed`` with the QR link or note when
someone has to act.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import sys
import time
import uuid
from datetime import datetime, timezone

from aiohttp import ClientError, ClientSession, ClientTimeout, web

HEARTBEAT_EVERY_S = 30


class NotLoggedIn(Exception):
    pass


class RiskControl(Exception):
    pass


class FakePlatform:
    """Stands in for WeChat: replace these methods with your platform's calls."""

    def __init__(self) -> None:
        self.logged_in = True
        self.account = {"id": "wxid_bot", "name": "小助手"}
        self.members = {"r1": [{"id": "u1", "name": "小李"}]}
        self._ids = itertools.count(1)

    async def send(self, room: str | None, user: str | None, text: str, mentions: list[str]) -> str:
        if not self.logged_in:
            raise NotLoggedIn()
        where = f"room {room}" if room else f"1-on-1 with {user}"
        print(f"\n[bot → {where}] {text}" + (f"  (@ {', '.join(mentions)})" if mentions else ""), flush=True)
        return f"msg{next(self._ids)}"

    async def kick(self, room: str, user: str) -> None:
        self.members[room] = [m for m in self.members.get(room, []) if m["id"] != user]
        print(f"\n[bot kicked {user} from {room}]", flush=True)


# -- signing and posting events to the bot --------------------------------------------------------------------------

def sign(secret: str, timestamp: str, body: bytes) -> str:
    """X-Bridge-Signature: sha256= + hex HMAC-SHA256 over "<timestamp>.<raw body>"."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class EventPoster:
    def __init__(self, bot_url: str, secret: str) -> None:
        self.url = bot_url.rstrip("/") + "/bridge/events"
        self.secret = secret
        self.http: ClientSession | None = None
        self._ids = itertools.count(1)
        # Event ids must stay unique across restarts of this provider (the bot ignores an id it has accepted before,
        # for days): a random run id, not the start second — a supervisor can restart a provider within one.
        self._run = uuid.uuid4().hex[:12]

    async def post_event(self, kind: str, **fields) -> None:
        """Post one event; resend on a network error or a 503 (the bot de-duplicates by id)."""
        event = {"id": f"ev-{self._run}-{next(self._ids)}", "kind": kind,
                 "at": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"), **fields}
        body = json.dumps(event, ensure_ascii=False).encode()
        assert self.http is not None
        for attempt in range(5):
            timestamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "X-Bridge-Timestamp": timestamp,
                       "X-Bridge-Signature": sign(self.secret, timestamp, body)}
            try:
                async with self.http.post(self.url, data=body, headers=headers) as response:
                    if response.status == 200:
                        return
                    answer = await response.text()
                    if response.status != 503:  # 400/401/413/422: resending would not help
                        print(f"[the bot refused {kind}: {response.status} {answer}]", file=sys.stderr)
                        return
            except (ClientError, TimeoutError) as exc:
                print(f"[bot unreachable ({type(exc).__name__}); retrying]", file=sys.stderr)
            await asyncio.sleep(2 ** attempt)
        print(f"[gave up posting {kind} {event['id']} after 5 attempts: the bot never accepted it]", file=sys.stderr)


# -- the four endpoints the bot calls -------------------------------------------------------------------------------

def make_app(platform: FakePlatform, token: str) -> web.Application:
    def authorized(request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    def refuse() -> web.Response:
        return web.json_response({"error": "unauthorized"}, status=401)

    async def capabilities(request: web.Request) -> web.Response:
        if not authorized(request):
            return refuse()
        return web.json_response({"send_text": True, "mention": True, "image": False, "kick": True,
                                  "invite": False})

    async def send(request: web.Request) -> web.Response:
        if not authorized(request):
            return refuse()
        body = await request.json()
        try:
            message_id = await platform.send(body.get("room"), body.get("user"), body["text"],
                                             body.get("mentions") or [])
        except NotLoggedIn:
            return web.json_response({"error": "not logged in"}, status=503)
        except RiskControl:
            return web.json_response({"error": "risk_control"}, status=429)
        except Exception as exc:  # noqa: BLE001 — any other failure: the bot retries a few times
            return web.json_response({"error": str(exc)[:200]}, status=500)
        return web.json_response({"id": message_id})

    async def kick(request: web.Request) -> web.Response:
        if not authorized(request):
            return refuse()
        body = await request.json()
        await platform.kick(body["room"], body["user"])
        return web.json_response({})

    async def members(request: web.Request) -> web.Response:
        if not authorized(request):
            return refuse()
        return web.json_response({"members": platform.members.get(request.match_info["room"], [])})

    app = web.Application()
    app.router.add_get("/capabilities", capabilities)
    app.router.add_post("/send", send)
    app.router.add_post("/kick", kick)
    app.router.add_get("/rooms/{room}/members", members)
    return app


# -- the terminal as the platform -----------------------------------------------------------------------------------

async def typed_lines(platform: FakePlatform, poster: EventPoster) -> None:
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        line = line.strip()
        if not line:
            continue
        word, _, rest = line.partition(" ")
        if word == "/login":
            platform.logged_in = True
            await poster.post_event("login", account=platform.account)
        elif word == "/logout":
            platform.logged_in = False
            await poster.post_event("logout", reason="logged out from the terminal")
        elif word == "/qr":
            platform.logged_in = False
            await poster.post_event("login_needed", qr_url=rest or None, note="scan, or verify your face")
        elif word in ("/join", "/leave"):
            user, _, name = rest.partition(" ")
            if word == "/join":
                await poster.post_event("join", room="r1", users=[{"id": user, "name": name or user}], inviter="u1")
            else:
                await poster.post_event("leave", room="r1", users=[user])
        elif line.startswith("dm:"):
            await poster.post_event("message", user="u1", name="小李", text=line[3:].strip())
        else:
            user, name, text = "u1", "小李", line
            if ":" in line and " " in line.split(":", 1)[0]:  # "u2 小王: text"
                who, text = line.split(":", 1)
                user, name = who.split(" ", 1)
            await poster.post_event("message", room="r1", room_topic="会员群", user=user.strip(),
                                    name=name.strip(), text=text.strip())


async def heartbeats(platform: FakePlatform, poster: EventPoster) -> None:
    while True:
        if platform.logged_in:
            await poster.post_event("heartbeat")
        await asyncio.sleep(HEARTBEAT_EVERY_S)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bot", default="http://127.0.0.1:8080", help="the bot's HTTP server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9300)
    args = parser.parse_args()
    token, secret = os.environ.get("BOT_BRIDGE_TOKEN"), os.environ.get("BOT_BRIDGE_SECRET")
    if not token or not secret:
        sys.exit("set BOT_BRIDGE_TOKEN and BOT_BRIDGE_SECRET (the same values as the bot's)")
    platform = FakePlatform()
    poster = EventPoster(args.bot, secret)
    runner = web.AppRunner(make_app(platform, token))
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    print(f"provider on http://{args.host}:{args.port}; events to {poster.url}. Type a message:", flush=True)
    async with ClientSession(timeout=ClientTimeout(total=10)) as poster.http:
        await poster.post_event("login", account=platform.account)
        beating = asyncio.create_task(heartbeats(platform, poster))
        try:
            await typed_lines(platform, poster)
        finally:
            beating.cancel()
            await runner.cleanup()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
