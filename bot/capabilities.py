"""What the connected platform can do, learnt from the transport at login.

Skills read it through ``ctx.capabilities`` and degrade where a feature is missing (no ``kick``: alert the room's
admins instead). A transport that says nothing can send text and @-mention, nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# How operators and admins read each capability (the dashboard, /help): Chinese, in the fields' order.
LABELS = {"send_text": "文字", "mention": "@提醒", "room_send": "群内发言", "image": "图片", "file": "文件", "link": "链接卡片",
          "kick": "踢人", "invite": "邀请入群", "room_qrcode": "群二维码", "announce": "群公告"}


@dataclass(frozen=True, slots=True)
class Capabilities:
    send_text: bool = True
    mention: bool = True
    # the bot may speak in groups at all; False on WeCom, whose external customer groups take no bot messages:
    # broadcasts there are 企业群发 tasks a staff member confirms (docs/operators/wecom.md)
    room_send: bool = True
    image: bool = False
    file: bool = False
    link: bool = False
    kick: bool = False
    invite: bool = False
    room_qrcode: bool = False
    announce: bool = False

    @classmethod
    def from_mapping(cls, raw: dict) -> Capabilities:
        """From a provider's answer (e.g. the bridge's GET /capabilities): missing or non-true means false (but a
        missing ``room_send`` means true: every provider before it could speak in groups)."""
        return cls(**{f.name: raw.get(f.name, f.name == "room_send") is True for f in fields(cls)})

    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self) if getattr(self, f.name))

    def missing(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self) if not getattr(self, f.name))

    def summary_zh(self) -> str:
        """One line for admins: 能力：文字、@提醒 / 不支持：踢人、邀请入群."""
        can = "、".join(LABELS[n] for n in self.names()) or "无"
        line = f"能力：{can}"
        if missing := self.missing():
            line += " / 不支持：" + "、".join(LABELS[n] for n in missing)
        return line
