"""An order update as it comes in (HTTP API, CSV import, replay): validated into one typed value.

Every way in goes through ``parse_order``, so a bad field gets the same answer everywhere: an OrderFieldError
naming the field. Everything that passes fits its column (skills/orders/models.py) on SQLite and PostgreSQL alike:
ids are NFKC-normalised (a full-width ``ＡＢ１２３`` is ``AB123``) and bounded, times lie within 2000–2100, amounts
and quantities are bounded before any conversion, and text holds no control characters or lone surrogates (which
PostgreSQL or the UTF-8 encoder would refuse with a traceback).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.http import FieldError

STATUSES = ("created", "paid", "shipped", "ready_for_pickup", "completed", "cancelled")
OPEN_STATUSES = ("created", "paid", "shipped", "ready_for_pickup")
_ID = re.compile(r"^[\w.:@\-]{1,64}$")  # order and group-buy ids: String(64) columns
MAX_MEMBER_ID = 128  # member ids, the shop's member ids and room ids: String(128) columns
MAX_TEXT = 500
MAX_AMOUNT = Decimal("10000000")  # 10 million yuan: anything above is a typo
MAX_NUMBER_CHARS = 32  # the longest amount or numeric id read as a number; any longer is not one (and int() of
#                        thousands of digits is refused by Python itself)
MAX_QTY = 100000
# the project's bound for timestamps given from outside: anything else is a typo (and year 1 or 9999 with an
# offset overflows datetime arithmetic)
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
# C0 controls but tab and line breaks, DEL, and lone surrogates (a JSON "\ud800"): never in an id or a name
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


OrderFieldError = FieldError  # one field error for every way in (API, CSV, replay)


class LongNumber:
    """A JSON number with more digits than any field takes (``json_int``): refused by the field that gets it."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


def json_int(text: str) -> int | LongNumber:
    """``json.loads(..., parse_int=json_int)``: a 5,000-digit number becomes a field error, not a ValueError of the
    whole body."""
    return int(text) if len(text) <= MAX_NUMBER_CHARS else LongNumber(len(text))


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


def _text(obj: dict, key: str, *, required: bool = False, pattern: re.Pattern | None = None,
          max_len: int = MAX_TEXT, normalise: bool = False) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise OrderFieldError(key, "is required")
        return None
    if isinstance(value, LongNumber):
        raise OrderFieldError(key, f"is a number of {value.digits} digits: too long")
    if isinstance(value, (int,)) and not isinstance(value, bool) and pattern is _ID:
        value = str(value)  # order numbers often arrive as JSON numbers
    if not isinstance(value, str):
        raise OrderFieldError(key, "must be a string")
    if _CONTROL.search(value):
        raise OrderFieldError(key, "contains control characters")
    if normalise:  # ids typed with a Chinese input method: ＡＢ１２３ is AB123
        value = unicodedata.normalize("NFKC", value)
    value = value.strip()
    if pattern is not None and not pattern.match(value):
        raise OrderFieldError(key, "must be 1-64 letters, digits or . _ - : @")
    if len(value) > max_len:
        raise OrderFieldError(key, f"is longer than {max_len} characters")
    return value


def _id(obj: dict, key: str, *, required: bool = False) -> str | None:
    return _text(obj, key, required=required, pattern=_ID, normalise=True)


def _member_id(obj: dict, key: str) -> str | None:
    return _text(obj, key, max_len=MAX_MEMBER_ID, normalise=True)


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
    # the year first: converting year 1 or 9999 with an offset to UTC overflows
    if not EARLIEST.year - 1 <= at.year <= LATEST.year or not EARLIEST <= at < LATEST:
        raise OrderFieldError(key, f"must be between {EARLIEST.year} and {LATEST.year}")
    return at


def _amount(obj: dict) -> int | None:
    value = obj.get("amount")
    if value is None or value == "":
        return None
    if isinstance(value, LongNumber):
        raise OrderFieldError("amount", f"is a number of {value.digits} digits: too long")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise OrderFieldError("amount", "must be a number of yuan, e.g. 59.9")
    if isinstance(value, float) and not math.isfinite(value):
        raise OrderFieldError("amount", "must be a finite number")
    text = str(value).strip()
    if len(text) > MAX_NUMBER_CHARS:
        raise OrderFieldError("amount", f"is {len(text)} characters long: not an amount")
    try:
        yuan = Decimal(text)
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
        if _CONTROL.search(value):
            raise OrderFieldError("items", "contains control characters")
        parts = [p.strip()[:100] for p in re.split(r"[;；\n]", value)]
        return tuple(p for p in parts if p)[:50]
    if not isinstance(value, list):
        raise OrderFieldError("items", "must be a list of item names (or {\"name\", \"qty\"} objects)")
    out = []
    for i, item in enumerate(value[:50]):
        name = item.get("name") if isinstance(item, dict) else item
        if isinstance(name, str) and _CONTROL.search(name):
            raise OrderFieldError(f"items[{i}]", "contains control characters")
        if isinstance(item, str) and item.strip():
            out.append(item.strip()[:100])
        elif isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"].strip():
            qty = item.get("qty", 1)
            if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
                raise OrderFieldError(f"items[{i}].qty", "must be a whole number ≥ 1")
            if qty > MAX_QTY:
                raise OrderFieldError(f"items[{i}].qty", f"must be at most {MAX_QTY}")
            out.append(item["name"].strip()[:100] + (f" x{qty}" if qty != 1 else ""))
        else:
            raise OrderFieldError(f"items[{i}]", "must be a name or {\"name\": ..., \"qty\": ...}")
    return tuple(out)


def parse_order(obj: Any) -> OrderUpdate:
    """A JSON object (or a CSV row as a dict of strings) → OrderUpdate. Raises OrderFieldError."""
    if not isinstance(obj, dict):
        raise OrderFieldError("body", "must be a JSON object")
    order_id = _id(obj, "order_id", required=True)
    status = _text(obj, "status", required=True)
    if status not in STATUSES:
        raise OrderFieldError("status", f"must be one of {', '.join(STATUSES)}")
    return OrderUpdate(
        order_id=order_id,  # type: ignore[arg-type]
        status=status,
        member_id=_member_id(obj, "member_id"),
        external_member_id=_member_id(obj, "external_member_id"),
        items=_items(obj),
        amount_cents=_amount(obj),
        pay_by=_time(obj, "pay_by"),
        pickup_by=_time(obj, "pickup_by"),
        group_buy_id=_id(obj, "group_buy_id"),
        cutoff_at=_time(obj, "cutoff_at"),
        room_id=_text(obj, "room", max_len=MAX_MEMBER_ID),
        tracking=_text(obj, "tracking"),
    )


FIELDS = ("order_id", "status", "member_id", "external_member_id", "items", "amount", "pay_by", "pickup_by",
          "group_buy_id", "cutoff_at", "room", "tracking")


def parse_binding(external_id: str, wechat_id: str) -> tuple[str, str]:
    """``orders bind EXTERNAL_ID WXID``: both ids cleaned as an order's member ids are. Raises OrderFieldError."""
    pair = {"external_member_id": external_id, "member_id": wechat_id}
    external, wechat = _member_id(pair, "external_member_id"), _member_id(pair, "member_id")
    if not external:
        raise OrderFieldError("external_member_id", "is required")
    if not wechat:
        raise OrderFieldError("member_id", "is required")
    return external, wechat
