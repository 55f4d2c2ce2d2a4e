from datetime import datetime, time, timedelta

from bot.timefmt import format_duration, parse_duration, parse_hhmm, zh_date, zh_datetime


def test_hhmm():
    assert parse_hhmm("09:30") == time(9, 30) and parse_hhmm(" 9:05 ") == time(9, 5)
    assert parse_hhmm("24:00") is None and parse_hhmm("9.30") is None and parse_hhmm("") is None


def test_durations_both_ways():
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("２小时") == timedelta(hours=2)  # full-width digits, as typed on a phone
    assert parse_duration("45") == timedelta(minutes=45)
    assert parse_duration("-5m") is None and parse_duration("forever") is None
    assert parse_duration("³") is None
    assert format_duration(timedelta(days=1, minutes=5)) == "1天5分钟" and format_duration(timedelta()) == "0秒"


def test_chinese_dates():
    t = datetime(2026, 11, 3, 9, 5)
    assert zh_date(t) == "11月3日" and zh_datetime(t) == "11月3日 09:05"
