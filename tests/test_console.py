import io
import logging
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

from bot.clock import VirtualClock
from bot.events import MembersJoined, MembersLeft, MessageReceived, OutgoingMessage
from bot.transports.console import ConsoleLogNote, ConsoleTransport
from tests.support import START, make_config

ROOT = Path(__file__).resolve().parents[1]


def console() -> tuple[ConsoleTransport, io.StringIO]:
    out = io.StringIO()
    return ConsoleTransport(make_config(), VirtualClock(START), out), out


def test_typing_in_the_demo_group_and_switching_identity():
    c, _ = console()
    event = c.handle_line("签到\n")
    assert isinstance(event, MessageReceived) and event.room_id == "demo_room" and event.sender.id == "console_user"
    assert c.handle_line(":as u9 小九") == "你现在是「小九」(u9)"
    event = c.handle_line("@小助手 在吗")
    assert event.sender.id == "u9" and event.mentions_bot


def test_admin_direct_chat_join_and_leave():
    c, _ = console()
    assert c.handle_line(":admin") == "你现在是管理员 admin1"
    join = c.handle_line(":join u7 小七")
    assert isinstance(join, MembersJoined) and join.members[0].name == "小七" and join.inviter_id == "admin1"
    assert isinstance(c.handle_line(":leave u7"), MembersLeft)
    c.handle_line(":dm")
    assert c.handle_line("/help").room_id is None
    assert c.handle_line(":nonsense").startswith("看不懂")
    assert c.handle_line(":quit") is None


def test_typed_input_is_cleaned_and_bad_input_gets_a_note_not_a_crash():
    c, _ = console()
    event = c.handle_line("你好\x00呀\r\n".encode())
    assert isinstance(event, MessageReceived) and event.text == "你好呀"
    assert c.handle_line(b"caf\xe9\n") == "这一行不是 UTF-8 文本，没有处理。"
    assert c.handle_line(":") == "看不懂这个操作，输入 :help 查看。"
    assert c.handle_line(":as " + "x" * 200) == "这一行没有处理：身份.id: is longer than 128 characters"
    assert c.handle_line(":who").startswith("你是「访客」")  # the refused identity was not taken
    assert c.handle_line(":as u1 " + "名" * 300) == f"你现在是「{'名' * 256}」(u1)"
    assert c.handle_line(":room " + "r" * 129) == "这一行没有处理：群 ID: is longer than 128 characters"


async def test_sends_are_printed_where_they_go():
    c, out = console()
    await c.send(OutgoingMessage("你好", room_id="demo_room"))
    await c.send(OutgoingMessage("私聊你好", user_id="u9"))
    assert out.getvalue().splitlines() == ["[群 会员福利群（演示）] 小助手: 你好", "[私聊] 小助手 → u9: 私聊你好"]


def test_console_session_end_to_end(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "c.db"}"\n'
                      "[governor]\nmin_interval_s = 0\njitter_s = 0\nchat_switch_interval_s = 0\n"
                      "per_chat_interval_s = 0\nwarmup_s = 0\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "bot", "console", "--config", str(config)], cwd=ROOT,
                         input="/ping\n签到\n:quit\n", capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "[群 会员福利群（演示）] 小助手: @访客\u2005在的～" in run.stdout
    # the check-in confirmation waits in a 30 s coalescing window: quitting closes the window, loses nothing
    assert "签到成功 ✅\n访客 +5" in run.stdout


def test_run_with_an_endpoint_but_no_token_says_what_is_missing(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "WECHATY_PUPPET_SERVICE_ENDPOINT": "127.0.0.1:1", "HOME": str(tmp_path)}
    config = tmp_path / "c.toml"
    config.write_text(f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "c.db"}"\n', encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "bot", "run", "--config", str(config)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "WECHATY_PUPPET_SERVICE_TOKEN is not set" in run.stderr


def test_run_without_a_terminal_or_an_endpoint_says_what_to_set(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    config = tmp_path / "c.toml"
    config.write_text(f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "c.db"}"\n', encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "bot", "run", "--config", str(config)], cwd=ROOT, env=env,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "WECHATY_PUPPET_SERVICE_ENDPOINT" in run.stderr and "BOT_BRIDGE_URL" in run.stderr


def test_logs_go_to_a_file_and_a_wait_shows_the_bot_typing(tmp_path):
    """A real console: log lines (INFO and the start-up warning's details) stay out of the chat, in bot.log next
    to the database; a reply held in a coalescing window shows 「（小助手正在输入…）」 first."""
    config = tmp_path / "c.toml"
    config.write_text(f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "c.db"}"\n'
                      "[skills.checkin]\ncoalesce_window_s = 4\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("BOT_LOG_FILE", "BOT_LOTTERY_KEY")}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "console", "--config", str(config)], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()

    def read_until(marker: str) -> list[str]:
        seen = []
        while not any(marker in line for line in seen):
            seen.append(lines.get(timeout=60))
        return seen

    try:
        start = read_until("控制台模式")
        proc.stdin.write("签到\n")
        proc.stdin.flush()
        chat = read_until("签到成功")
        proc.stdin.write(":quit\n")
        proc.stdin.flush()
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    log_file = tmp_path / "bot.log"
    assert start[0] == f"（日志写在 {log_file}，这里只提示警告）\n"
    # the missing lottery key is a warning: one short note, its details in the file
    assert any(line.startswith("（警告：lottery: the environment variable BOT_LOTTERY_KEY") for line in start)
    assert chat[-2:] == ["（小助手正在输入…）\n", "[群 会员福利群（演示）] 小助手: 签到成功 ✅\n"]
    printed = "".join(start + chat)
    assert " INFO " not in printed and "Traceback" not in printed and " INFO " not in err
    logged = log_file.read_text(encoding="utf-8")
    assert "INFO bot: bot started" in logged and "WARNING skills.lottery" in logged


def test_a_logged_error_is_one_line_in_the_chat_with_its_traceback_in_the_file(tmp_path):
    c, out = console()
    logger = logging.getLogger("test.console.note")
    handler = ConsoleLogNote(c, "data/bot.log")
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError("磁盘满了\n第二行")
        except RuntimeError:
            logger.exception("skill faq failed on an event: %s", "RuntimeError")
        logger.info("not shown")
    finally:
        logger.removeHandler(handler)
    assert out.getvalue() == "（错误：skill faq failed on an event: RuntimeError — 详见 data/bot.log）\n"
