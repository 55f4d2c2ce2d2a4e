from bot.events import Person


async def test_ping_reply_mentions_sender(bot):
    await bot.say("u1", "/ping", name="小李")
    await bot.settle()
    assert [(s.message.room_id, s.text, s.message.mentions) for s in bot.sent] == [
        ("g1", "@小李\u2005在的～", ("u1",))
    ]


async def test_join_greets(bot):
    await bot.join("g1", Person("u2", "小王"), inviter="u1")
    await bot.settle()
    assert bot.sent[0].message.mentions == ("u2",)
