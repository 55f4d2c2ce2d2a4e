import pytest

from bot.parser import MAX_COMMAND_TEXT, normalize, parse, strip_mentions, tokenize


@pytest.mark.parametrize(
    ("text", "name", "args"),
    [
        ("/help", "help", ()),
        ("／签到", "签到", ()),  # full-width slash
        ("  /PING  ", "ping", ()),  # case and padding
        ("/抽奖\u3000开始\u3000iPhone", "抽奖", ("开始", "iPhone")),  # full-width spaces
        ("/kb:add 问题", "kb", ("add", "问题")),  # colon straight after the command word
        ("/kb：add 问题", "kb", ("add", "问题")),  # full-width colon
        ("/ping 😀 🎉", "ping", ("😀", "🎉")),
    ],
)
def test_commands_people_type(text, name, args):
    parsed = parse(text)
    assert parsed is not None
    assert (parsed.name, parsed.args) == (name, args)


def test_options_with_either_colon_or_equals():
    parsed = parse("/lottery start iPhone winners=3 duration：30m keyword=抽奖")
    assert parsed.args == ("start", "iPhone")
    assert parsed.options == {"winners": "3", "duration": "30m", "keyword": "抽奖"}


def test_quoted_arguments_straight_curly_and_corner_quotes():
    parsed = parse('/say "hello world" “你 好” 「一 二」 \'a b\'')
    assert parsed.args == ("hello world", "你 好", "一 二", "a b")


def test_unclosed_quote_is_taken_literally():
    assert parse('/x "unclosed arg').args == ('"unclosed', "arg")


def test_leading_bot_mention_and_trailing_mentions_are_split_off():
    parsed = parse("@小助手\u2005/points add 50 原因 @小王\u2005@小李\u2005")
    assert parsed.name == "points"
    assert parsed.args == ("add", "50", "原因")
    assert parsed.mentions == ("小助手", "小王", "小李")
    assert parsed.rest == "add 50 原因"


@pytest.mark.parametrize("text", ["", "/", "//", "/ ", "hello /ping", "签到", "@小助手", "／", "\u3000"])
def test_not_commands(text):
    assert parse(text) is None


def test_very_long_text_is_not_a_command_and_does_not_blow_up():
    assert parse("/" + "啊" * 10_000) is None
    assert parse("/x " + "a " * (MAX_COMMAND_TEXT // 2 - 3)) is not None


def test_garbage_never_raises():
    for text in ["/\x00\x01", "/@@@", "/'\"“「", "/=", "/a=b=c", "/\u200b", "@ /x", "/" + "😀" * 300]:
        parse(text)  # the assertion is that nothing raises
    assert parse("/a=b=c").name == "a=b=c"


def test_normalize_and_strip_mentions():
    assert normalize("  签\u3000到  ") == "签 到"
    assert strip_mentions("签到 @小助手\u2005") == ("签到", ("小助手",))
    assert tokenize("a  b") == ["a", "b"]
