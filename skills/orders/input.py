"""An order update as it comes in (HTTP API, CSV import, replay): validated into one typed value.

Every way in goes through ``parse_order``, so a bad field gets the same answer everywhere: an OrderFieldError
naming the field.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.http import FieldError

STATUSES = ("created", "paid", "shipped", "ready_for_pickup", "completed", "cancelled")
OPEN_STATUSES = ("created", "paid", "shipped", "ready_for_pickup")
_ID = re.compile(r"^[\w.:@\-]{1,64}$")
MAX_TEXT = 500
MAX_AMOUNT = Decimal("10000000")  # 10 million yuan: anything above is a typo


OrderFieldError = FieldError  # one field error for every way in (API, CSV, replay)


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """One (order, status) report. Fields other than order_id and status are None when not given: an update of
    a known order changes only what it names. ``amount_cents`` is in fen (分)."""

    order_id: str
    status: str
    member_id: str | None = None  # WeChat id
    external_member_id: str | None = None  # the shop's member id, mapped through member_bindings
    items: tuple[str, ...] | None = None
    amount_cents: int | None = None
    pay_by: datetime | None = None
    pickup_by: datetime | None = None
    group_buy_id: str | None = None
    cutoff_at: datetime | None = None
    room_id: str | None = None
    tracking: str | None = None


@dataclass(frozen=True, slots=True)
class OrderResult:
    outcome: str  # applied | duplicate | stale (an older status than the order already has: kept, not applied)
    order_id: str
    status: str  # the order's status after this update


def _text(obj: dict, key: str, *, required: bool = False, pattern: re.Pattern | None = None) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise OrderFieldError(key, "is required")
        return None
    if isinstance(value, (int,)) and not isinstance(value, bool) and pattern is _ID:
        value = str(value)  # order numbers often arrive as JSON numbers
    if not isinstance(value, str):
        raise OrderFieldError(key, "must be a string")
    value = value.strip()
    if pattern is not None and not pattern.match(value):
        raise OrderFieldError(key, "must be 1-64 letters, digits or . _ - : @")
    if len(value) > MAX_TEXT:
        raise OrderFieldError(key, f"is longer than {MAX_TEXT} characters")
    return value


def _time(obj: dict, key: str) -> datetime | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise OrderFieldError(key, "must be an ISO 8601 time string, e.g. 2026-11-23T18:00:00+08:00")
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise OrderFieldError(key, f"is not an ISO 8601 time: {value[:40]!r}") from None
    if at.tzinfo is None:
        raise OrderFieldError(key, "needs a UTC offset, e.g. +08:00")
    return at


def _amount(obj: dict) -> int | None:
    value = obj.get("amount")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise OrderFieldError("amount", "must be a number of yuan, e.g. 59.9")
    if isinstance(value, float) and not math.isfinite(value):
        raise OrderFieldError("amount", "must be a finite number")
    try:
        yuan = Decimal(str(value).strip())
    except InvalidOperation:
        raise OrderFieldError("amount", f"is not a number: {str(value)[:20]!r}") from None
    if not yuan.is_finite() or yuan < 0 or yuan > MAX_AMOUNT:
        raise OrderFieldError("amount", "must be between 0 and 10000000 yuan")
    if yuan != yuan.quantize(Decimal("0.01")):
        raise OrderFieldError("amount", "has more than 2 decimal places")
    return int(yuan * 100)


def _items(obj: dict) -> tuple[str, ...] | None:
    value = obj.get("items")
    if value is None or value == "":
        return None
    if isinstance(value, str):
        parts = [p.strip() for p in re.split(r"[;；\n]", value)]
        return tuple(p for p in parts if p)[:50]
    if not isinstance(value, list):
        raise OrderFieldError("items", "must be a list of item names (or {\"name\", \"qty\"} objects)")
    out = []
    for i, item in enumerate(value[:50]):
        if isinstance(item, str) and item.strip():
            out.append(item.strip()[:100])
        elif isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"].strip():
            qty = item.get("qty", 1)
            if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
                raise OrderFieldError(f"items[{i}].qty", "must be a whole number ≥ 1")
            out.append(item["name"].strip()[:100] + (f" x{qty}" if qty != 1 else ""))
        else:
            raise OrderFieldError(f"items[{i}]", "must be a name or {\"name\": ..., \"qty\": ...}")
    return tuple(out)


def parse_order(obj: Any) -> OrderUpdate:
    """A JSON object (or a CSV row as a dict of strings) → OrderUpdate. Raises OrderFieldError."""
    if not isinstance(obj, dict):
        raise OrderFieldError("body", "must be a JSON object")
    order_id = _text(obj, "order_id", required=True, pattern=_ID)
    status = _text(obj, "status", required=True)
    if status not in STATUSES:
        raise OrderFieldError("status", f"must be one of {', '.join(STATUSES)}")
    return OrderUpdate(
        order_id=order_id,  # type: ignore[arg-type]
        status=status,
        member_id=_text(obj, "member_id"),
        external_member_id=_text(obj, "external_member_id"),
        items=_items(obj),
        amount_cents=_amount(obj),
        pay_by=_time(obj, "pay_by"),
        pickup_by=_time(obj, "pickup_by"),
        group_buy_id=_text(obj, "group_buy_id", pattern=_ID),
        cutoff_at=_time(obj, "cutoff_at"),
        room_id=_text(obj, "room"),
        tracking=_text(obj, "tracking"),
    )


FIELDS = ("order_id", "status", "member_id", "external_member_id", "items", "amount", "pay_by", "pickup_by",
          "group_buy_id", "cutoff_at", "room", "tracking")
