"""bot/clean.py: values cleaned where they enter, refusals naming the field and never the value."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot import clean
from bot.events import MembersJoined, MembersLeft, MessageReceived, Person
from bot.http import FieldError

AT = datetime(2026, 11, 23, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def message(**kw) -> MessageReceived:
    base = dict(at=AT, sender=Person("u1", "小李"), text="hi", room_id="g1", room_topic="群")
    return MessageReceived(**{**base, **kw})


def refused(event, labels=None) -> str:
    with pytest.raises(FieldError) as info:
        clean.clean_event(event, labels)
    return str(info.value)


def test_text_loses_nul_and_lone_surrogates_and_gets_one_line_ending():
    assert clean.text("a\x00b\r\nc\rd\ud800e\U0001f600", "f", limit=100) == "ab\nc\nde\U0001f600"
    assert clean.text("名" * 300, "f", limit=256) == "名" * 256
    with pytest.raises(FieldError, match="^f: must be a string$"):
        clean.text(["x"], "f", limit=10)


def test_a_clean_event_comes_back_as_it_was():
    event = message()
    assert clean.clean_event(event) is event  # nothing to change, nothing copied
    joined = MembersJoined(at=AT, room_id="g1", members=(Person("u2", "小王"),), room_topic="群")
    assert clean.clean_event(joined) == joined


def test_names_topics_and_text_are_cleaned_and_cut_to_their_columns():
    event = clean.clean_event(message(sender=Person("u1", "李\x00" + "名" * 300), text="x\r\n" * 1500,
                                      room_topic="群\ud800" * 200))
    assert event.sender.name == "李" + "名" * 255 and len(event.sender.name) == clean.NAME_MAX
    assert event.text == ("x\n" * 1000)[: clean.TEXT_MAX]
    assert event.room_topic == "群" * 200
    assert clean.clean_event(message(room_topic="")).room_topic is None
    assert clean.clean_event(message(sender=Person("u1", None))).sender.name == ""


@pytest.mark.parametrize("bad, problem", [
    ("x" * 129, "is longer than 128 characters"),
    ("u\x001", "contains a control character"),
    ("u\ud8001", "contains a control character or an invalid code point"),
    ("", "must not be empty"),
    (["u1"], "must be a string"),
    (None, "is required"),
])
def test_an_id_is_refused_not_repaired(bad, problem):
    message_text = refused(message(sender=Person(bad, "n")), {"sender.id": "user"})
    assert message_text.startswith("user: ") and problem in message_text
    if isinstance(bad, str) and bad:
        assert bad not in message_text  # the value is member data: never in the message


@pytest.mark.parametrize("at, problem", [
    (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=8))), "between the years 2000 and 2100"),
    (datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-12))), "between the years 2000 and 2100"),
    (datetime(1999, 12, 31, 23, 59, tzinfo=UTC), "between the years 2000 and 2100"),
    (datetime(2026, 1, 1), "needs an offset"),
])
def test_times_outside_2000_to_2100_are_refused(at, problem):
    assert problem in refused(message(at=at))
    assert clean.instant(datetime(2100, 12, 31, 23, tzinfo=UTC), "at").year == 2100


def test_parse_instant_says_what_is_wrong():
    assert clean.parse_instant("2026-11-23T09:00:00+08:00", "at") == AT
    for raw, problem in [("yesterday", "at: is not an ISO 8601 time: 'yesterday'"), (5, "at: must be an ISO 8601"),
                         (None, "at: is required"), ("0001-01-01T00:00:00+08:00", "between the years")]:
        with pytest.raises(FieldError, match=problem):
            clean.parse_instant(raw, "at")


def test_types_are_checked_field_by_field():
    labels = {"sender.name": "name", "members": "users", "member_ids": "users"}
    assert refused(message(sender=Person("u1", ["名字"])), labels) == "name: must be a string"
    assert refused(message(text=5)) == "text: must be a string"
    assert refused(message(room_topic=["t"])) == "room_topic: must be a string"
    assert refused(message(mentions_bot="yes")) == "mentions_bot: must be true or false"
    joined = MembersJoined(at=AT, room_id="g1", members=(Person("u2", "a"), Person("u3", 7)))
    assert refused(joined, labels) == "users[1].name: must be a string"
    assert refused(MembersJoined(at=AT, room_id="g1", members=()), labels) == \
        "users: must be a non-empty list of members"
    assert refused(MembersLeft(at=AT, room_id="g1", member_ids=("u2", 3)), labels) == "users[1]: must be a string"


def test_mention_ids_no_member_could_have_are_dropped_not_fatal():
    event = clean.clean_event(message(mention_ids=("bot", "x" * 500, 3, "ok")))
    assert event.mention_ids == ("bot", "ok")


def test_json_values_are_cleaned_and_depth_is_bounded():
    assert clean.json_value({"a\x00": ["b\x00", {"c": "d\r\n"}], "n": 1}, "f") == {"a": ["b", {"c": "d\n"}], "n": 1}
    deep: list = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(FieldError, match="f: is nested more than 32 deep"):
        clean.json_value(deep, "f")
