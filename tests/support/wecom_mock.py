"""A WeCom API server on loopback (aiohttp), built from the official docs (developer.work.weixin.qq.com): the
endpoints the bot calls, their answers and error codes; and ``CallbackSender``, which posts callbacks to the bot
encrypted and signed the way WeCom does.

Endpoints (all under /cgi-bin): gettoken; kf/sync_msg, kf/send_msg, kf/customer/batchget; externalcontact/get,
send_welcome_msg, groupchat/get, add_msg_template, get_groupmsg_send_result (paged with its cursor), mark_tag,
get_corp_tag_list, add_corp_tag, edit_corp_tag (a tag library, 40071 for a name already in the group, 40068 for
an unknown tag id); message/send (应用消息 to staff UserIDs: ``invaliduser``, 81013 when none is valid). Every call but gettoken
needs a valid ``access_token`` (else 40014; an expired one 42001). Scripted faults: ``fail_next(path, errcode)``,
``expire_tokens()``, ``drop_next(path)`` (the connection closes without an answer), ``hold_next(path)`` (done,
but answered only when released). 微信客服's rule is enforced:
at most 5 messages within 48 h of the customer's last message (else 95001, as the window errors of the 95xxx
class); 企业群发 is limited per customer per month (45009 once over).
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.transports.wecom.crypto import CallbackCrypto

CORP_ID = "ww_test_corp"
SECRET = "test-app-secret"
TOKEN = "callbacktoken"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")  # 43 characters
KF = "wkKF0001"
WINDOW_S = 48 * 3600
WINDOW_LIMIT = 5
WELCOME_VALID_S = 20


@dataclass
class Customer:
    external_userid: str
    name: str = ""
    unionid: str = ""


@dataclass
class Group:
    chat_id: str
    name: str
    owner: str
    members: list[dict] = field(default_factory=list)


class WeComMock:
    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.now = now
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.tokens: dict[str, float] = {}  # token → expiry (mock time)
        self.calls: list[tuple[str, dict]] = []
        self.faults: dict[str, list[int | str]] = defaultdict(list)
        self.holds: dict[str, list[asyncio.Event]] = defaultdict(list)
        self.kf_messages: dict[str, list[dict]] = defaultdict(list)  # open_kfid → every message, in order
        self.sent: list[dict] = []  # kf/send_msg accepted
        self._sent_msgids: set[str] = set()
        self._window: dict[str, tuple[float, int]] = {}  # external_userid → (last message at, sent since)
        self.customers: dict[str, Customer] = {}
        self.welcome_codes: dict[str, float] = {}  # code → issued at
        self.welcomes: list[dict] = []
        self.groups: dict[str, Group] = {}
        self.templates: dict[str, dict] = {}
        self.monthly: dict[str, int] = defaultdict(int)
        self.monthly_limit = 4
        self.unsendable: set[str] = set()  # targets add_msg_template puts in fail_list (无效或无法发送的)
        self.result_page = 1000  # get_groupmsg_send_result's page (smaller in tests: the cursor is followed)
        self.tags: list[dict] = []  # mark_tag calls accepted
        self.tag_groups: list[dict] = []  # the corp's tag library, as get_corp_tag_list answers it
        self.agent_id = 1000002  # the self-built app
        self.staff: set[str] = set()  # UserIDs in the app's visible range
        self.app_messages: list[dict] = []  # message/send accepted (one entry per recipient reached)
        self._seq = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> WeComMock:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        for path, handler in (("kf/sync_msg", self._sync_msg), ("kf/send_msg", self._send_msg),
                              ("kf/customer/batchget", self._batchget),
                              ("externalcontact/send_welcome_msg", self._welcome),
                              ("externalcontact/groupchat/get", self._groupchat),
                              ("externalcontact/add_msg_template", self._add_template),
                              ("externalcontact/get_groupmsg_send_result", self._send_result),
                              ("externalcontact/mark_tag", self._mark_tag),
                              ("externalcontact/get_corp_tag_list", self._tag_list),
                              ("externalcontact/add_corp_tag", self._add_tag),
                              ("externalcontact/edit_corp_tag", self._edit_tag),
                              ("message/send", self._app_send)):
            app.router.add_post(f"/cgi-bin/{path}", self._authed(path, handler))
        app.router.add_get("/cgi-bin/externalcontact/get", self._authed("externalcontact/get", self._get_contact))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def go_down(self) -> None:
        """Unreachable: nothing listens on the port (the state is kept for ``come_back``)."""
        await self.stop()

    async def come_back(self) -> None:
        await self.start(self.port)

    # -- scripting ------------------------------------------------------------------------------------------------

    def fail_next(self, path: str, errcode: int) -> None:
        self.faults[path].append(errcode)

    def drop_next(self, path: str) -> None:
        self.faults[path].append("drop")

    def hold_next(self, path: str) -> asyncio.Event:
        """The next call to ``path`` is carried out, but its answer waits until the returned event is set (the bot
        may stop meanwhile: WeCom did the work, the bot never heard)."""
        release = asyncio.Event()
        self.holds[path].append(release)
        return release

    def expire_tokens(self) -> None:
        self.tokens = {t: 0.0 for t in self.tokens}

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.calls if p == path)

    def customer_says(self, external_userid: str, text: str, *, open_kfid: str = KF, at: float | None = None,
                      name: str = "", unionid: str = "") -> str:
        self.customers.setdefault(external_userid, Customer(external_userid, name, unionid))
        self._seq += 1
        msgid = f"kfmsg{self._seq:06d}"
        at = self.now() if at is None else at
        self.kf_messages[open_kfid].append({
            "msgid": msgid, "open_kfid": open_kfid, "external_userid": external_userid, "send_time": int(at),
            "origin": 3, "msgtype": "text", "text": {"content": text}})
        self._window[external_userid] = (at, 0)
        return msgid

    def new_welcome_code(self) -> str:
        code = uuid.uuid4().hex
        self.welcome_codes[code] = self.now()
        return code

    def staff_confirms(self, msgid: str, userid: str, failed: tuple[str, ...] = ()) -> None:
        """The staff member pressed 发送 in their client: the task's targets are sent (those in ``failed``: status
        2, the customer is no longer a contact / the group is gone)."""
        task = self.templates[msgid]
        for row in task["results"]:
            if row["userid"] == userid:
                target = row.get("chat_id") or row.get("external_userid")
                row["status"], row["send_time"] = (2 if target in failed else 1), int(self.now())

    # -- handlers -------------------------------------------------------------------------------------------------

    async def _gettoken(self, request: web.Request) -> web.StreamResponse:
        self.calls.append(("gettoken", dict(request.query)))
        if request.query.get("corpid") != CORP_ID:
            return _answer(40013, "invalid corpid")
        if request.query.get("corpsecret") != SECRET:
            return _answer(40001, "invalid credential")
        token = "tok-" + uuid.uuid4().hex[:12]
        self.tokens[token] = self.now() + 7200
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    def _authed(self, path: str, handler):
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.json() if request.method == "POST" else dict(request.query)
            self.calls.append((path, body))
            if self.faults[path]:
                fault = self.faults[path].pop(0)
                if fault == "drop":
                    assert request.transport is not None
                    request.transport.close()
                    return web.Response(status=500)
                return _answer(int(fault), "scripted")
            token = request.query.get("access_token", "")
            if token not in self.tokens:
                return _answer(40014, "invalid access_token")
            if self.tokens[token] <= self.now():
                return _answer(42001, "access_token expired")
            answer = await handler(body)
            if self.holds[path]:
                await self.holds[path].pop(0).wait()
            return answer
        return handle

    async def _sync_msg(self, body: dict) -> web.Response:
        open_kfid = body.get("open_kfid", "")
        messages = self.kf_messages[open_kfid]
        start = int(body.get("cursor") or 0)
        limit = min(int(body.get("limit") or 1000), 1000)
        page = messages[start:start + limit]
        return web.json_response({"errcode": 0, "errmsg": "ok", "next_cursor": str(start + len(page)),
                                  "has_more": int(start + len(page) < len(messages)), "msg_list": page})

    async def _send_msg(self, body: dict) -> web.Response:
        user = body.get("touser", "")
        last, sent = self._window.get(user, (None, 0))
        if last is None or self.now() > last + WINDOW_S or sent >= WINDOW_LIMIT:
            return _answer(95001, "send msg window closed")  # a 95xxx window/session error
        msgid = body.get("msgid") or uuid.uuid4().hex
        if msgid in self._sent_msgids:
            return _answer(0, "ok", msgid=msgid)  # the same msgid again: already sent, not twice
        self._sent_msgids.add(msgid)
        self._window[user] = (last, sent + 1)
        self.sent.append(body)
        return _answer(0, "ok", msgid=msgid)

    async def _batchget(self, body: dict) -> web.Response:
        found = [{"external_userid": c.external_userid, "nickname": c.name, "unionid": c.unionid}
                 for e in body.get("external_userid_list", []) if (c := self.customers.get(e)) is not None]
        return _answer(0, "ok", customer_list=found, invalid_external_userid=[])

    async def _get_contact(self, body: dict) -> web.Response:
        c = self.customers.get(body.get("external_userid", ""))
        if c is None:
            return _answer(84061, "not external contact")
        return _answer(0, "ok", external_contact={"external_userid": c.external_userid, "name": c.name, "type": 1,
                                                  **({"unionid": c.unionid} if c.unionid else {})},
                       follow_user=[])

    async def _welcome(self, body: dict) -> web.Response:
        issued = self.welcome_codes.pop(body.get("welcome_code", ""), None)
        if issued is None or self.now() - issued > WELCOME_VALID_S:
            return _answer(41051, "invalid welcome_code")
        self.welcomes.append(body)
        return _answer(0, "ok")

    async def _groupchat(self, body: dict) -> web.Response:
        group = self.groups.get(body.get("chat_id", ""))
        if group is None:
            return _answer(40050, "chatid not found")
        return _answer(0, "ok", group_chat={"chat_id": group.chat_id, "name": group.name, "owner": group.owner,
                                            "create_time": 1700000000, "member_list": group.members,
                                            "admin_list": []})

    async def _add_template(self, body: dict) -> web.Response:
        sender = body.get("sender", "")
        chat_type = body.get("chat_type", "single")
        targets = body.get("chat_id_list", []) if chat_type == "group" else body.get("external_userid", [])
        month = time.strftime("%Y-%m", time.gmtime(self.now()))
        if any(self.monthly[f"{month}:{t}"] >= self.monthly_limit for t in targets):
            return _answer(45009, "api freq out of limit")
        failed = [t for t in targets if t in self.unsendable]
        targets = [t for t in targets if t not in self.unsendable]
        for t in targets:
            self.monthly[f"{month}:{t}"] += 1
        msgid = "msg" + uuid.uuid4().hex[:16]
        key = "chat_id" if chat_type == "group" else "external_userid"
        self.templates[msgid] = {"body": body, "results": [
            {key: t, "userid": sender, "status": 0, "send_time": 0} for t in targets]}
        return _answer(0, "ok", fail_list=failed, msgid=msgid)

    async def _send_result(self, body: dict) -> web.Response:
        task = self.templates.get(body.get("msgid", ""))
        if task is None:
            return _answer(41063, "msgid not found")
        rows = [r for r in task["results"] if r["userid"] == body.get("userid")]
        start = int(body.get("cursor") or 0)
        end = start + min(int(body.get("limit") or 500), 1000, self.result_page)
        return _answer(0, "ok", send_list=rows[start:end], next_cursor=str(end) if end < len(rows) else "")

    def tag_ids(self) -> dict[str, str]:
        return {t["id"]: t["name"] for g in self.tag_groups for t in g["tag"]}

    def tag_made_by_hand(self, group_name: str, name: str) -> str:
        """An administrator made a tag in the admin console."""
        group = next((g for g in self.tag_groups if g["group_name"] == group_name), None)
        if group is None:
            group = {"group_id": "et" + uuid.uuid4().hex[:10], "group_name": group_name,
                     "create_time": int(self.now()), "order": 0, "tag": []}
            self.tag_groups.append(group)
        tag_id = "et" + uuid.uuid4().hex[:12]
        group["tag"].append({"id": tag_id, "name": name, "create_time": int(self.now()), "order": 0})
        return tag_id

    async def _mark_tag(self, body: dict) -> web.Response:
        known = self.tag_ids()
        if any(t not in known for t in body.get("add_tag", []) + body.get("remove_tag", [])):
            return _answer(40068, "invalid tagid")
        self.tags.append(body)
        return _answer(0, "ok")

    async def _tag_list(self, body: dict) -> web.Response:
        ids, groups = body.get("tag_id") or [], body.get("group_id") or []
        out = []
        for g in self.tag_groups:
            if groups and g["group_id"] not in groups:
                continue
            tags = [t for t in g["tag"] if not ids or t["id"] in ids]
            if tags or not ids:
                out.append({**g, "tag": tags})
        return _answer(0, "ok", tag_group=out)

    async def _add_tag(self, body: dict) -> web.Response:
        """add_corp_tag: into ``group_id``, or a group named ``group_name`` (made if there is none)."""
        names = [t.get("name", "") for t in body.get("tag") or []]
        if not names or any(not n or len(n) > 30 for n in names):
            return _answer(40058, "invalid tag name")
        if body.get("group_id"):
            group = next((g for g in self.tag_groups if g["group_id"] == body["group_id"]), None)
            if group is None:
                return _answer(40068, "invalid tag group id")
        else:
            group = next((g for g in self.tag_groups if g["group_name"] == body.get("group_name")), None)
        if group is not None and any(t["name"] in names for t in group["tag"]):
            return _answer(40071, "UserTag Name Already Exist")
        if group is None:
            group = {"group_id": "et" + uuid.uuid4().hex[:10], "group_name": body.get("group_name", ""),
                     "create_time": int(self.now()), "order": 0, "tag": []}
            self.tag_groups.append(group)
        made = [{"id": "et" + uuid.uuid4().hex[:12], "name": n, "create_time": int(self.now()), "order": 0}
                for n in names]
        group["tag"].extend(made)
        return _answer(0, "ok", tag_group={k: group[k] for k in ("group_id", "group_name", "create_time", "order")}
                       | {"tag": made})

    async def _edit_tag(self, body: dict) -> web.Response:
        for g in self.tag_groups:
            for t in g["tag"]:
                if t["id"] == body.get("id"):
                    name = body.get("name", t["name"])
                    if any(o["name"] == name and o is not t for o in g["tag"]):
                        return _answer(40071, "UserTag Name Already Exist")
                    t["name"] = name
                    return _answer(0, "ok")
        return _answer(40068, "invalid tagid")


    async def _app_send(self, body: dict) -> web.Response:
        """发送应用消息 (message/send): to ``touser`` (UserIDs joined by ``|``) through the app ``agentid``. Unknown
        UserIDs come back in ``invaliduser`` (lower-cased); if none is valid, errcode 81013."""
        if body.get("agentid") != self.agent_id:
            return _answer(40056, "invalid agentid")
        if body.get("msgtype") != "text":
            return _answer(40008, "invalid message type")
        content = (body.get("text") or {}).get("content", "")
        if not content or len(content.encode()) > 2048:
            return _answer(44004, "empty content" if not content else "content size out of limit")
        users = [u for u in str(body.get("touser", "")).split("|") if u]
        valid = [u for u in users if u in self.staff]
        invalid = "|".join(u.lower() for u in users if u not in self.staff)
        if not valid:
            return _answer(81013, "user & party & tag all invalid", invaliduser=invalid)
        for user in valid:
            self.app_messages.append({"touser": user, "content": content})
        return _answer(0, "ok", invaliduser=invalid, msgid="app" + uuid.uuid4().hex[:12])


def _answer(errcode: int, errmsg: str, **extra: Any) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": errmsg, **extra})


# -- callbacks, as WeCom sends them ------------------------------------------------------------------------------------

def event_xml(fields: dict[str, Any], items: dict[str, list[str]] | None = None) -> bytes:
    parts = []
    for key, value in fields.items():
        parts.append(f"<{key}>{value}</{key}>" if isinstance(value, int) else f"<{key}><![CDATA[{value}]]></{key}>")
    for key, values in (items or {}).items():
        parts.append(f"<{key}>" + "".join(f"<Item><![CDATA[{v}]]></Item>" for v in values) + f"</{key}>")
    return ("<xml>" + "".join(parts) + "</xml>").encode()


class CallbackSender:
    """Posts encrypted, signed callbacks to the bot's callback URL as WeCom does."""

    def __init__(self, bot_url: str, now: Callable[[], float], *, token: str = TOKEN, aes_key: str = AES_KEY,
                 corp_id: str = CORP_ID) -> None:
        self.url = bot_url.rstrip("/") + "/wecom/callback"
        self.now = now
        self.crypto = CallbackCrypto(token, aes_key, corp_id)
        self.corp_id = corp_id
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> CallbackSender:
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc) -> None:
        if self._http is not None:
            await self._http.close()

    def signed(self, encrypted: str, *, timestamp: int | None = None, nonce: str | None = None,
               signature: str | None = None) -> dict[str, str]:
        ts = str(int(self.now()) if timestamp is None else timestamp)
        nonce = nonce or uuid.uuid4().hex[:10]
        return {"msg_signature": signature or self.crypto.sign(ts, nonce, encrypted), "timestamp": ts,
                "nonce": nonce}

    def envelope(self, fields: dict[str, Any], items: dict[str, list[str]] | None = None, *,
                 receive_id: str | None = None, to: str | None = None) -> tuple[str, bytes]:
        inner = event_xml({"ToUserName": self.corp_id, "CreateTime": int(self.now()), **fields}, items)
        encrypted = self.crypto.encrypt(inner, receive_id=receive_id)
        outer = (f"<xml><ToUserName><![CDATA[{to or self.corp_id}]]></ToUserName>"
                 f"<Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>")
        return encrypted, outer.encode()

    async def post(self, fields: dict[str, Any], items: dict[str, list[str]] | None = None, *,
                   query: dict[str, str] | None = None, body: bytes | None = None, **envelope: Any) -> tuple[int, str]:
        encrypted, raw = self.envelope(fields, items, **envelope)
        assert self._http is not None
        async with self._http.post(self.url, params=query or self.signed(encrypted), data=body or raw) as r:
            return r.status, await r.text()

    async def verify_url(self, echo: str = "echo-123", **signing: Any) -> tuple[int, str]:
        encrypted = self.crypto.encrypt(echo.encode())
        assert self._http is not None
        async with self._http.get(self.url, params={**self.signed(encrypted, **signing), "echostr": encrypted}) as r:
            return r.status, await r.text()

    # the callbacks the bot handles
    async def staff_says(self, userid: str, text: str, *, msgid: int | None = None) -> tuple[int, str]:
        """A staff member writes to the self-built app (接收消息: 文本消息)."""
        return await self.post({"FromUserName": userid, "MsgType": "text", "Content": text,
                                "MsgId": msgid or int.from_bytes(os.urandom(6), "big"), "AgentID": 1000002})

    async def kf_event(self, open_kfid: str = KF) -> tuple[int, str]:
        return await self.post({"MsgType": "event", "Event": "kf_msg_or_event", "Token": "ENC" + os.urandom(4).hex(),
                                "OpenKfId": open_kfid})

    async def contact_added(self, external_userid: str, staff: str, welcome_code: str, state: str = "") -> \
            tuple[int, str]:
        return await self.post({"FromUserName": "sys", "MsgType": "event", "Event": "change_external_contact",
                                "ChangeType": "add_external_contact", "UserID": staff,
                                "ExternalUserID": external_userid, "State": state, "WelcomeCode": welcome_code})

    async def chat_changed(self, chat_id: str, detail: str, members: list[str]) -> tuple[int, str]:
        return await self.post({"FromUserName": "sys", "MsgType": "event", "Event": "change_external_chat",
                                "ChatId": chat_id, "ChangeType": "update", "UpdateDetail": detail,
                                "JoinScene": 1, "MemChangeCnt": len(members)}, {"MemChangeList": members})
