"""Learning from what operators resolve: /kb link (a miss becomes a 相似问法), /kb candidates and /kb accept (a
member's confirmed choice becomes one), and the file edits under them."""

import re

import pytest

from skills.faq import state
from skills.faq.knowledge.adding import Refused, check_similar, with_similar
from skills.faq.knowledge.files import load_knowledge
from tests.support.faq_support import RETURNS_CSV, SHIPPING, activity, faq_config, write_kb


@pytest.fixture
def kb_dir(tmp_path):
    return write_kb(tmp_path / "kb")


@pytest.fixture
async def h(harness, kb_dir):
    return await harness(faq_config(kb_dir))


def texts_to(h, chat):
    return [s.text for s in h.sent if s.message.conversation_id == chat]


# -- the file edits ---------------------------------------------------------------------------------------------------

def test_a_markdown_entry_gets_a_line_under_its_heading_and_the_rest_stays_byte_for_byte():
    text = SHIPPING.replace("\n", "\r\n")  # a file saved on Windows keeps its line breaks
    out = with_similar(text, "物流.md", 10, "单号去哪查")  # line 10: "## 怎么查物流？"
    assert out == text.replace("## 怎么查物流？\r\n", "## 怎么查物流？\r\n相似问法：单号去哪查\r\n")
    assert with_similar(text, "物流.md", 9, "单号去哪查") is None  # not a heading: the file moved on
    last = with_similar("## 问？\n答。\n## 最后一个？", "a.md", 3, "再问")  # a heading without a line break, at the end
    assert last == "## 问？\n答。\n## 最后一个？\n相似问法：再问\n"


def test_a_csv_row_gets_its_cell_extended_and_the_other_rows_stay_as_written():
    text = RETURNS_CSV.replace("invoice,", '"invoice",')  # quoting in another row is left as it was
    out = with_similar(text, "售后.csv", 3, "钱啥时候回来, 急")  # line 3: refund-eta
    lines = out.splitlines()
    assert lines[2] == 'refund-eta,退款多久到账？,"钱什么时候退回来；钱啥时候回来, 急",验收后 1 个工作日内原路退款。'
    assert out.splitlines()[:2] + out.splitlines()[3:] == text.splitlines()[:2] + text.splitlines()[3:]
    assert with_similar("编号,问题,答案\na,问？,答\n", "x.csv", 2, "再问") is None  # no 相似问法 column


def test_a_similar_question_is_one_line_without_separators():
    assert check_similar("  单号\x00 去哪\n查 ") == "单号 去哪 查"
    for bad in ("", "问" * 101, "单号；物流", "a|b"):
        with pytest.raises(Refused):
            check_similar(bad)


# -- /kb link ---------------------------------------------------------------------------------------------------------

async def test_kb_link_adds_a_missed_question_to_an_entry_and_it_answers_at_once(h, kb_dir):
    await h.say("u1", "东西寄出来了没有", room=None)
    await h.say("admin1", "/kb misses", room=None, after_s=1)
    await h.settle()
    assert texts_to(h, "u1") == ["这个问题我先记下了，已转人工客服，稍后会有同事回复你～"]
    (report,) = texts_to(h, "admin1")
    miss_id = re.search(r"东西寄出来了没有（1 次）#(\d+)", report).group(1)

    await h.say("admin1", f"/kb link {miss_id} ship-when", room=None, after_s=1)
    await h.say("u2", "东西寄出来了没有", room=None, after_s=2)
    await h.settle()
    assert texts_to(h, "admin1")[1] == "已把「东西寄出来了没有」加为「下单后多久发货？」的相似问法（物流.md）。"
    assert texts_to(h, "u2") == ["工作日 16:00 前付款当天发出。"]
    text = (kb_dir / "物流.md").read_text(encoding="utf-8")
    assert text == SHIPPING.replace("## 下单后多久发货？\n", "## 下单后多久发货？\n相似问法：东西寄出来了没有\n")

    await h.say("admin1", f"/kb link {miss_id} ship-when", room=None, after_s=1)  # twice: nothing more
    await h.say("admin1", "/kb link 999999 ship-when", room=None, after_s=1)
    await h.say("admin1", f"/kb link {miss_id} no-such-entry", room=None, after_s=1)
    await h.say("admin1", "/知识库 关联 abc ship-when", room=None, after_s=1)
    await h.settle()
    said = texts_to(h, "admin1")[2:]
    assert said[0] == "「下单后多久发货？」已经有「东西寄出来了没有」这个问法了。"
    assert said[1] == "没有编号为 999999 的未命中问题，请用 /kb misses 看看编号。"
    assert said[2].startswith("没有编号为“no-such-entry”的条目")
    assert said[3].startswith("未命中问题的编号要写数字。")
    assert (kb_dir / "物流.md").read_text(encoding="utf-8") == text


async def test_kb_link_into_a_csv_entry_by_its_default_id_and_a_broken_file_refuses(h, kb_dir):
    (kb_dir / "售后.csv").write_text(RETURNS_CSV.replace("invoice,可以开发票吗？", ",可以开发票吗？"), encoding="utf-8")
    await h.say("admin1", "/kb reload", room=None)
    await h.say("u1", "公司抬头怎么填", room=None, after_s=1)
    await h.settle()
    (miss,) = [r for r in await _miss_ids(h)]
    await h.say("admin1", f"/kb link {miss} 售后:可以开发票吗？", room=None, after_s=1)
    await h.settle()
    assert texts_to(h, "admin1")[-1] == "已把「公司抬头怎么填」加为「可以开发票吗？」的相似问法（售后.csv）。"
    assert ",可以开发票吗？,怎么开发票；公司抬头怎么填," in (kb_dir / "售后.csv").read_text(encoding="utf-8")

    (kb_dir / "坏的.md").write_text("没有标题的一段话\n", encoding="utf-8")  # another file is broken meanwhile
    before = (kb_dir / "物流.md").read_text(encoding="utf-8")
    await h.say("admin1", f"/kb link {miss} ship-track", room=None, after_s=1)
    await h.settle()
    assert texts_to(h, "admin1")[-1].startswith("没有写入：改了 物流.md 后知识库会读不通")
    assert (kb_dir / "物流.md").read_text(encoding="utf-8") == before


async def _miss_ids(h) -> list[int]:
    from sqlalchemy import select

    from storage.models import Activity

    await h.app.activity.flush()
    async with h.app.services.sessions() as s:
        return list((await s.execute(select(Activity.id).where(Activity.kind == "faq_miss"))).scalars())


# -- /kb candidates, /kb accept ---------------------------------------------------------------------------------------

async def test_a_confirmed_choice_becomes_a_candidate_operators_accept(harness, kb_dir):
    h = await harness(faq_config(kb_dir, answer_threshold=0.999, choice_threshold=0.01))
    for user in ("u1", "u2"):
        await h.say(user, "退货咋弄", room=None, after_s=1)
        await h.settle()
        offer = texts_to(h, user)[0]
        assert offer.startswith("你是想问：\n1. 可以退货吗？")
        await h.say(user, "1", room=None, after_s=5)
    await h.say("admin1", "/kb candidates", room=None, after_s=1)
    await h.settle()
    assert [a["mode"] for a in await activity(h, "faq_answer")] == ["choice", "choice"]
    assert texts_to(h, "admin1") == ["最近 30 天成员在“你是想问”里选过的问法（共 1 条）：\n"
                                     "1. 「退货咋弄」→「可以退货吗？」（2 次）\n用 /kb accept 序号 采纳为相似问法。"]

    await h.say("admin1", "/kb accept 2", room=None, after_s=1)
    await h.say("admin1", "/知识库 采纳 1", room=None, after_s=1)
    await h.say("admin1", "/kb candidates", room=None, after_s=1)
    await h.settle()
    said = texts_to(h, "admin1")[1:]
    assert said == ["没有第 2 条，现在可以采纳的有 1 条，请先用 /kb candidates 看看。",
                    "已把「退货咋弄」加为「可以退货吗？」的相似问法（售后.csv）。",
                    "最近 30 天没有可以采纳的问法。"]
    kb = load_knowledge(kb_dir)
    assert next(e for e in kb.entries if e.id == "return-policy").similar == ("七天无理由退货", "怎么申请退货",
                                                                               "退货咋弄")
    assert state(h.app.services).kb.entry("return-policy").similar[-1] == "退货咋弄"  # reloaded


async def test_only_global_admins_change_the_knowledge_base(h, kb_dir):
    before = {p.name: p.read_text(encoding="utf-8") for p in kb_dir.iterdir()}
    for text in ("/kb link 1 ship-when", "/kb candidates", "/kb accept 1"):
        await h.say("u1", text, room=None, after_s=1)
    await h.settle()
    assert texts_to(h, "u1") == ["抱歉，这个命令只有管理员可以使用。"] * 3
    assert {p.name: p.read_text(encoding="utf-8") for p in kb_dir.iterdir()} == before
