import subprocess
import sys
from datetime import time
from pathlib import Path

import pytest

from bot.config import Config, ConfigError, load_config, parse_config, skill_settings
from skills.checkin import CheckinSettings

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


def test_numbers_must_be_finite_in_the_core_and_in_skills(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text("[governor]\nreply_max_delay_s = inf\njitter_s = nan\n[governor.light]\nmax_delay_s = -inf\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(file)
    assert info.value.problems == ["governor.jitter_s: must be a finite number, not nan",
                                   "governor.reply_max_delay_s: must be a finite number, not inf",
                                   "governor.light.max_delay_s: must be a finite number, not -inf"]
    cfg = parse_config({"skills": {"checkin": {"coalesce_window_s": float("inf")}}})
    with pytest.raises(ConfigError) as info:
        skill_settings(cfg, "checkin", CheckinSettings)
    assert info.value.problems == ["skills.checkin.coalesce_window_s: must be a finite number, not inf"]


def test_a_skill_listed_twice_is_refused():
    assert problems({"bot": {"skills": ["ping", "checkin", "ping"]}}) == ["bot.skills: 'ping' is listed twice"]


def test_intervals_that_would_spin_or_never_back_off_are_refused():
    found = problems({"activity": {"flush_interval_s": 0, "flush_max_rows": 0},
                      "governor": {"backoff_initial_s": 0.5, "warmup_factor": 0}})
    assert found == ["activity.flush_interval_s: must be a number ≥ 0.05, not 0",
                     "activity.flush_max_rows: must be a whole number ≥ 1, not 0",
                     "governor.warmup_factor: must be a number ≥ 1, not 0",
                     "governor.backoff_initial_s: must be a number ≥ 1, not 0.5"]
    assert problems({"activity": {"flush_interval_s": 0.01}}) == [
        "activity.flush_interval_s: must be a number ≥ 0.05, not 0.01"]
    assert problems({"governor": {"backoff_initial_s": 120, "backoff_max_s": 60}}) == [
        "governor.backoff_max_s: must be at least backoff_initial_s"]
    # no pacing at all stays possible (the tests' fast governor)
    fast = parse_config({"activity": {"flush_interval_s": 0.05},
                         "governor": {"min_interval_s": 0, "jitter_s": 0, "chat_switch_interval_s": 0,
                                      "per_chat_interval_s": 0, "warmup_s": 0, "room_min_gap_s": 0}})
    assert fast.activity.flush_interval_s == 0.05 and fast.governor.min_interval_s == 0.0


def test_a_table_for_an_unknown_skill_is_reported_with_a_suggestion():
    assert problems({"skills": {"chekin": {"base_points": 5}}}) == [
        "skills.chekin: unknown skill (did you mean 'checkin'?)"]
    # a skill that exists but is not enabled (yet) may keep its table; so may one enabled by a dotted name
    parse_config({"bot": {"skills": ["ping"]}, "skills": {"faq": {"choices": 3}}})
    parse_config({"bot": {"skills": ["mybrand.skills.vip"]}, "skills": {"vip": {}}})


def test_whole_numbers_fit_a_database_integer():
    assert problems({"governor": {"max_per_minute": 2**31}}) == [
        "governor.max_per_minute: must be a whole number ≤ 2147483647, not 2147483648"]
    cfg = parse_config({"skills": {"checkin": {"base_points": 2**31 - 1,
                                               "rewards": {"帆布袋": {"cost": 10**12, "stock": 1}}}}})
    with pytest.raises(ConfigError) as info:
        skill_settings(cfg, "checkin", CheckinSettings)
    assert info.value.problems == [
        "skills.checkin.rewards.帆布袋.cost: must be a whole number ≤ 2147483647, not 1000000000000"]


def test_a_named_config_file_must_exist_but_the_default_may_be_missing(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "typo.toml")
    assert str(info.value) == f"{tmp_path / 'typo.toml'}: file not found"
    monkeypatch.chdir(tmp_path)
    assert load_config("config.toml") == Config(path="config.toml")  # a checkout without one: the defaults
    assert load_config() == Config(path="config.toml")
    with pytest.raises(ConfigError, match="file not found"):
        load_config("config.toml", must_exist=True)


def test_secrets_are_refused_everywhere_and_never_echoed():
    pasted = "sk-live-4f9a8b7c6d5e"
    found = problems({"http": {"token_env": pasted, "hmac_secret_env": "BOT_API_HMAC_SECRET"},
                      "dashboard": {"token_env": "x" * 65},
                      "rooms": {"r1@chatroom": {"password": "hunter2"}},
                      "skills": {"faq": {"llm": {"api_key_env": pasted, "api_key": pasted}},
                                 "checkin": {"corpsecret": "s", "encoding_aes_key": "k"}}})
    env = "must be the name of an environment variable, not the secret itself"
    in_file = "secrets are not read from files; set them in the environment"
    for expected in (f"http.token_env: {env}", f"dashboard.token_env: {env}", f"skills.faq.llm.api_key_env: {env}",
                     f'rooms."r1@chatroom".password: {in_file}', f"skills.faq.llm.api_key: {in_file}",
                     f"skills.checkin.corpsecret: {in_file}", f"skills.checkin.encoding_aes_key: {in_file}"):
        assert expected in found
    assert not any(pasted in p or "hunter2" in p for p in found)
    assert not any(p.startswith("http.hmac_secret_env") for p in found)


def test_a_time_zone_folder_is_reported_not_raised():
    assert problems({"bot": {"timezone": "Asia"}}) == ["bot.timezone: unknown time zone 'Asia' (e.g. \"Asia/Shanghai\")"]


def test_http_host_and_port_can_be_set_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text('[http]\nhost = "127.0.0.1"\nport = 8080\n', encoding="utf-8")
    monkeypatch.setenv("BOT_HTTP_HOST", "0.0.0.0")
    monkeypatch.setenv("BOT_HTTP_PORT", "9090")
    http = load_config(path).http
    assert (http.host, http.port) == ("0.0.0.0", 9090)
    monkeypatch.setenv("BOT_HTTP_PORT", "80a")
    with pytest.raises(ConfigError, match="BOT_HTTP_PORT: must be a port number"):
        load_config(path)
