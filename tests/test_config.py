import subprocess
import sys
from datetime import time
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]


def problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "cfg.toml")
    return info.value.problems


def test_the_shipped_config_is_valid_and_matches_the_defaults():
    shipped = load_config(ROOT / "config.toml", must_exist=True)
    defaults = parse_config({})
    assert shipped.governor == defaults.governor
    assert shipped.activity == defaults.activity
    assert shipped.storage == defaults.storage


def test_errors_name_the_key_and_the_problem_all_at_once():
    found = problems({
        "bot": {"nmae": "x", "timezone": "Mars/Olympus"},
        "governor": {"quiet_hours": {"start": "25:00"}, "max_per_minute": -1, "light": {"quiet_hours": "later"}},
        "storage": {"url": "bot.db"},
    })
    assert "bot.nmae: unknown setting (did you mean 'name'?)" in found
    assert "bot.timezone: unknown time zone 'Mars/Olympus' (e.g. \"Asia/Shanghai\")" in found
    assert 'governor.quiet_hours.start: must be a time like "22:00", not \'25:00\'' in found
    assert "governor.max_per_minute: must be a whole number ≥ 0, not -1" in found
    assert 'governor.light.quiet_hours: must be "defer" or "drop", not \'later\'' in found
    assert any(p.startswith("storage.url:") for p in found)
    assert problems({"storage": {"url": "mysql+aiomysql://root@localhost/bot"}}) == [
        "storage.url: use sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB (the supported async "
        "backends), not 'mysql+aiomysql'"]


def test_secrets_in_the_file_are_refused():
    found = problems({"wechaty": {"endpoint": "x:1", "token": "abc"}})
    assert "wechaty.token: secrets are not read from files; set them in the environment" in found


def test_partial_tables_keep_their_other_defaults():
    cfg = parse_config({"governor": {"promotional": {"max_delay_s": 60}, "quiet_hours": {"end": "07:30"}}})
    assert cfg.governor.promotional.quiet_hours == "drop"  # the promotional default, not the generic one
    assert cfg.governor.promotional.max_delay_s == 60.0
    assert cfg.governor.quiet_hours.start == time(22, 0)
    assert cfg.governor.quiet_hours.end == time(7, 30)


def test_admins_are_ids_global_and_per_room():
    cfg = parse_config({"bot": {"admins": ["wxid_a"]}, "rooms": {"r1@chatroom": {"admins": ["wxid_b"]}}})
    assert cfg.is_admin("wxid_a", None) and cfg.is_admin("wxid_a", "other")
    assert cfg.is_admin("wxid_b", "r1@chatroom")
    assert not cfg.is_admin("wxid_b", "other") and not cfg.is_admin("wxid_b", None)


def test_broken_toml_and_encoding_are_reported_with_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[bot\nname = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    bad.write_bytes(b"[bot]\nname = \"\xff\xfe\"")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(bad)


def test_check_config_command(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text("[governor]\njitter_s = \"lots\"\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "bot", "check-config", "--config", str(bad)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert f"{bad}: governor.jitter_s: must be a number ≥ 0, not 'lots'" in run.stderr
    ok = subprocess.run([sys.executable, "-m", "bot", "check-config"], cwd=ROOT, capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0, ok.stderr


def test_check_config_also_checks_the_skills(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text('[bot]\nskills = ["ping", "welcome", "nope"]\n[skills.welcome]\ntemplate = "{oops}"\n',
                   encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "bot", "check-config", "--config", str(bad)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "skills.welcome.template: bad placeholder 'oops'" in run.stderr
    assert "bot.skills: cannot load 'nope'" in run.stderr
