"""Knowledge files: the Markdown and CSV formats, synonyms, the user dictionary, and their errors with lines."""

import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from skills.faq import FaqSettings, check_cli
from skills.faq.knowledge.base import KnowledgeBase, build
from skills.faq.knowledge.files import load_knowledge, parse_csv, parse_markdown, parse_synonyms, parse_userdict
from tests.support.faq_support import write_kb

ROOT = Path(__file__).resolve().parent.parent


def test_markdown_entries_with_similar_questions_tags_rooms_and_ids():
    problems = []
    entries = parse_markdown(
        "# 标题不是问题\n\n## 包邮吗？\n相似问法：运费多少；满多少包邮\n相似：要付运费吗\n标签：物流，运费\n"
        "适用群：vip, 123@chatroom\n\n满 59 元包邮。\n\n不满 59 元运费 8 元。\n<!-- 备注：不给会员看 -->\n"
        "## 怎么开票\n编号：invoice\n在订单里申请。\n", "物流.md", problems)
    assert problems == []
    first, second = entries
    assert first.id == "物流:包邮吗？" and first.question == "包邮吗？"
    assert first.similar == ("运费多少", "满多少包邮", "要付运费吗")
    assert first.tags == ("物流", "运费") and first.rooms == ("vip", "123@chatroom")
    assert first.answer == "满 59 元包邮。\n\n不满 59 元运费 8 元。"
    assert first.source == "物流.md:3"
    assert second.id == "invoice" and second.answer == "在订单里申请。"
    assert first.visible_in(None) and first.visible_in("123@chatroom") and first.visible_in("x", ("vip",))
    assert not first.visible_in("other@chatroom")


def test_markdown_errors_name_file_and_line():
    problems = []
    entries = parse_markdown("孤零零的一段话\n## 没有答案的问题\n相似问法：a\n\n## 有答案\n答案\n## \n答案\n",
                             "a.md", problems)
    assert [e.question for e in entries] == ["有答案"]
    assert [(p.file, p.line) for p in problems] == [("a.md", 1), ("a.md", 2), ("a.md", 7)]
    assert "没有答案" in problems[1].message


def test_csv_entries_and_malformed_rows():
    problems = []
    text = ('问题,相似问法,答案,标签\n'
            '可以退货吗？,七天无理由；怎么退货,"支持，7 天内。",售后\n'
            '多列了,a,b,c,d\n'
            ',没有问题,答案,\n'
            '没有答案,,,\n')
    entries = parse_csv(text, "售后.csv", problems)
    (entry,) = entries
    assert entry.similar == ("七天无理由", "怎么退货") and entry.answer == "支持，7 天内。"
    assert entry.tags == ("售后",) and entry.id == "售后:可以退货吗？" and entry.source == "售后.csv:2"
    assert [(p.line, p.message[:6]) for p in problems] == [(3, "这一行有 5"), (4, "“问题”是空"), (5, "“没有答案”")]
    problems = []
    assert parse_csv("question,answer\n", "x.csv", problems) == [] and problems == []
    assert parse_csv("标题,内容\n", "y.csv", problems) == [] and problems[0].line == 1


def test_synonyms_and_user_dictionary():
    problems = []
    syn = parse_synonyms("# 注释\n快递=物流=快件\n自提＝自取\n单\n退=退货\n物流=配送\n", "synonyms.txt", problems)
    assert syn.apply("我的物流到哪了") == "我的快递到哪了" and syn.apply("可以自取吗") == "可以自提吗"
    assert [p.line for p in problems] == [4, 5, 6]
    words = parse_userdict("晨光咖啡 20 nz\n冷萃\n坏 行 x y\n", "userdict.txt", problems)
    assert words == [("晨光咖啡", 20), ("冷萃", None)] and problems[-1].line == 3


def test_bad_encoding_is_reported_and_the_rest_loads(tmp_path):
    folder = write_kb(tmp_path / "kb")
    (folder / "旧表格.csv").write_bytes("问题,答案\n发票,可以\n".encode("gbk"))
    kb = load_knowledge(folder)
    assert len(kb.entries) == 5
    (problem,) = kb.problems
    assert problem.file == "旧表格.csv" and "UTF-8" in problem.message


def test_duplicate_ids_are_an_error(tmp_path):
    folder = write_kb(tmp_path / "kb")
    (folder / "more.md").write_text("## 另一个\n编号：invoice\n答案\n", encoding="utf-8")
    (problem,) = load_knowledge(folder).problems
    assert problem.file == "售后.csv" or problem.file == "more.md"
    assert "invoice" in problem.message


def test_the_shipped_sample_knowledge_base_is_clean_and_big_enough():
    snap, problems = build(ROOT / "knowledge")
    assert problems == []
    assert len(snap.entries) >= 30
    assert any(e.source.endswith(".csv:2") for e in snap.entries)  # the CSV file is part of it


def test_kb_check_command_line(tmp_path):
    folder = write_kb(tmp_path / "kb")
    ok = subprocess.run([sys.executable, "-m", "bot", "kb", "check", "--dir", str(folder)], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "OK, 5 entries" in ok.stdout
    (folder / "物流.md").write_text("## 没答案\n", encoding="utf-8")
    bad = subprocess.run([sys.executable, "-m", "bot", "kb", "check", "--dir", str(folder)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "物流.md:1:" in bad.stdout


def test_user_words_are_used_and_forgotten_when_removed():
    from skills.faq.knowledge.text import Analyzer

    assert "晨光冷萃杯" in Analyzer(user_words=[("晨光冷萃杯", 50)]).analyse("晨光冷萃杯多少钱").words
    assert "晨光冷萃杯" not in Analyzer().analyse("晨光冷萃杯多少钱").words  # the next load has no such word


def test_an_unclosed_comment_is_a_problem_where_it_opens():
    problems = []
    entries = parse_markdown("## 包邮吗？\n满 59 元包邮。\n<!-- 备注：下周改成满 69\n## 退货\n七天无理由。\n", "物流.md",
                             problems)
    assert [e.question for e in entries] == ["包邮吗？"]  # what it swallowed is lost: so it is an error
    (problem,) = problems
    assert (problem.file, problem.line) == ("物流.md", 3) and "“<!--”没有用“-->”结束" in problem.message
    problems = []
    parse_markdown("## 包邮吗？\n<!-- 两行的\n注释 -->\n满 59 元包邮。\n<!-- 一行的 -->\n", "物流.md", problems)
    assert problems == []


def test_kb_check_reports_an_unclosed_comment_with_file_and_line(tmp_path, capsys):
    folder = write_kb(tmp_path / "kb")
    (folder / "活动.md").write_text("## 有活动吗\n有。\n\n<!-- 没写完的备注\n## 下一个\n答案\n", encoding="utf-8")
    assert check_cli(str(folder)) == 1
    out = capsys.readouterr().out
    assert "活动.md:4: 注释“<!--”没有用“-->”结束" in out and "1 problem(s)" in out


async def test_a_reload_with_an_unclosed_comment_keeps_the_last_good_copy(tmp_path):
    folder = write_kb(tmp_path / "kb")
    kb = KnowledgeBase(folder)
    assert (await kb.reload()).ok
    good = kb.current
    path = folder / "物流.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "<!-- 备注：下周改成满 69 包邮\n\n## 新问题\n新答案\n", encoding="utf-8")
    result = await kb.reload()
    assert not result.ok and kb.current is good and result.entries == 5
    line = len(text.splitlines()) + 1
    assert [str(p) for p in result.problems] == [f"物流.md:{line}: 注释“<!--”没有用“-->”结束：它后面的内容全被当成了"
                                                 "注释，请在注释末尾加上“-->”"]


def test_a_file_over_the_bound_is_refused_by_its_size_without_being_read(tmp_path):
    folder = write_kb(tmp_path / "kb")
    with (folder / "导出.md").open("wb") as f:
        f.truncate(50_000_000)  # 50 MB (sparse: no time or disk to make it)
    tracemalloc.start()
    try:
        kb = load_knowledge(folder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # reading it whole would allocate 50 MB
    assert len(kb.entries) == 5  # the other files load
    (problem,) = kb.problems
    assert str(problem) == ("导出.md: 文件太大（50.0 MB），一个知识库文件最多 2.0 MB：请拆成几个文件"
                            "（或调大 skills.faq.max_file_bytes）")


def test_the_bound_is_a_setting_and_applies_to_every_kind_of_file(tmp_path):
    folder = write_kb(tmp_path / "kb")
    (folder / "正好.md").write_text("## 问\n" + "a" * (1000 - len("## 问\n".encode())), encoding="utf-8")
    assert (folder / "正好.md").stat().st_size == 1000
    kb = load_knowledge(folder, max_file_bytes=1000)
    assert kb.problems == [] and len(kb.entries) == 6  # at the bound: loaded
    (folder / "synonyms.txt").write_text("快递=物流\n" + "# 注释\n" * 200, encoding="utf-8")
    snap, problems = build(folder, max_file_bytes=1000)
    assert [(p.file, p.line) for p in problems] == [("synonyms.txt", 0)] and "文件太大" in problems[0].message
    assert FaqSettings(max_file_bytes=1000).max_file_bytes == 1000
    with pytest.raises(ValueError, match="max_file_bytes"):
        FaqSettings(max_file_bytes=0)
