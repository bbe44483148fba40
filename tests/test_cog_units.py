"""Unit tests for the cog's pure parts: registry rules, settings precedence, state, formatting."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from taskcog.engine.schedules import ScheduleError, parse_spec
from taskcog.engine.supervision import ErrorRecord, Outcome, State, TaskStatus
from taskcog.red import formatting as fmt
from taskcog.red.alerts import guild_text, owner_text
from taskcog.red.registry import Registry, TaskSpec, UnknownTask, check_min_interval, min_gap
from taskcog.red.stores.settings import GLOBAL_DEFAULTS, Settings
from taskcog.red.stores.state import Summary

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


async def _noop(ctx):
    return None


def spec(name="demo", **kw):
    kw.setdefault("default_schedule", "every 10m")
    kw.setdefault("min_interval", 60)
    return TaskSpec(name=name, run=_noop, description="demo task", **kw)


# ---------------------------------------------------------------- registry


def test_task_names_are_validated():
    for bad in ("", "A", "has space", "x" * 50, "9lives"):
        with pytest.raises(ValueError):
            spec(bad)
    with pytest.raises(ValueError, match="scope"):
        spec(scope="everywhere")


def test_default_schedule_must_respect_minimum():
    with pytest.raises(ScheduleError, match="minimum interval is 5m"):
        spec(default_schedule="every 1m", min_interval=300)


def test_min_gap_of_each_kind():
    assert min_gap(parse_spec("every 90s")) == 90
    assert min_gap(parse_spec("cron */15 * * * * UTC")) == 900
    assert min_gap(parse_spec("daily 09:00,09:30 UTC")) == 1800
    assert min_gap(parse_spec("once 2099-01-01T00:00 UTC")) is None
    with pytest.raises(ScheduleError, match="runs every 15m"):
        check_min_interval(parse_spec("cron */15 * * * * UTC"), 3600)


def test_unknown_task_names_the_known_ones():
    reg = Registry()
    reg.add(spec("alpha"))
    reg.add(spec("beta", scope="global"))
    with pytest.raises(UnknownTask, match="Unknown task 'gamma'. Known tasks: alpha, beta."):
        reg.get("gamma")
    assert reg.get(" ALPHA ").name == "alpha"
    with pytest.raises(ValueError, match="already registered"):
        reg.add(spec("alpha"))


def test_global_tasks_are_visible_to_the_owner_only():
    reg = Registry()
    reg.add(spec("alpha"))
    reg.add(spec("beta", scope="global"))
    assert [s.name for s in reg.visible(owner=False)] == ["alpha"]
    assert [s.name for s in reg.visible(owner=True)] == ["alpha", "beta"]


def test_tasks_of_an_owner_cog():
    reg = Registry()
    reg.add(spec("alpha", owner="Other"))
    reg.add(spec("beta"))
    assert [s.name for s in reg.by_owner("Other")] == ["alpha"]


# ---------------------------------------------------------------- settings


def make_settings():
    settings = Settings(config=None)  # effective() reads only the cache
    settings.globals = {**GLOBAL_DEFAULTS, "default_schedules": {}, "global_tasks": {}}
    return settings


def test_schedule_precedence_guild_then_owner_default_then_builtin():
    settings = make_settings()
    task = spec()
    eff = settings.effective(task, 1)
    assert eff.schedule == parse_spec("every 10m") and eff.schedule_source == "built-in default"
    settings.globals["default_schedules"]["demo"] = "every 30m"
    eff = settings.effective(task, 1)
    assert eff.schedule == parse_spec("every 30m") and eff.schedule_source == "owner default"
    settings.guilds[1] = {"demo": {"schedule": "every 2h"}}
    eff = settings.effective(task, 1)
    assert eff.schedule == parse_spec("every 2h") and eff.schedule_source == "guild"
    assert settings.effective(task, 2).schedule == parse_spec("every 30m")  # other guild untouched


def test_enabled_flag_defaults_and_overrides():
    settings = make_settings()
    assert settings.effective(spec(), 1).enabled is True
    assert settings.effective(spec(enabled_by_default=False), 1).enabled is False
    settings.guilds[1] = {"demo": {"enabled": False}}
    assert settings.effective(spec(), 1).enabled is False


def test_a_stored_spec_that_no_longer_parses_falls_back_to_the_default():
    settings = make_settings()
    settings.guilds[1] = {"demo": {"schedule": "daily 09:00 Gone/Zone"}}
    eff = settings.effective(spec(), 1)
    assert eff.schedule == parse_spec("every 10m")
    assert eff.schedule_source == "built-in default; saved schedule invalid"


def test_options_merge_over_task_defaults():
    settings = make_settings()
    settings.guilds[1] = {"demo": {"options": {"b": 3}}}
    eff = settings.effective(spec(default_options={"a": 1, "b": 2}), 1)
    assert dict(eff.options) == {"a": 1, "b": 3}


# ---------------------------------------------------------------- state


def test_summary_adds_live_counters_to_the_persisted_base():
    base = Summary(iterations=10, total_failures=2, last_outcome="ok")
    live = TaskStatus(name="demo", key=1)
    assert base.merged(live) is base  # not run since load: the base stands
    live.iterations, live.total_failures = 3, 1
    live.last_start, live.last_end, live.last_duration = NOW, NOW, 0.5
    live.last_outcome = Outcome.ERROR
    live.last_error = ErrorRecord(NOW, "ValueError", "boom", "tb")
    merged = base.merged(live)
    assert (merged.iterations, merged.total_failures) == (13, 3)
    assert merged.last_error == {"type": "ValueError", "message": "boom"}
    assert Summary.from_dict(merged.to_dict()) == merged


# ---------------------------------------------------------------- formatting


def view(state="sleeping", enabled=True, **live_fields):
    live = TaskStatus(
        name="demo", key=1, state=State(state) if state != "disabled" else State.STOPPED
    )
    for key, value in live_fields.items():
        setattr(live, key, value)
    return fmt.JobView(
        task="demo",
        key=1,
        guild_name=None,
        state=fmt.display_state(enabled, live),
        schedule=parse_spec("every 10m"),
        schedule_source="built-in default",
        enabled=enabled,
        channel=None,
        summary=Summary().merged(live),
        live=live,
    )


def test_display_state_words():
    live = TaskStatus(name="d", state=State.BACKOFF)
    assert fmt.display_state(True, live) == "backoff"
    assert fmt.display_state(False, live) == "disabled"
    live.state = State.RUNNING
    assert fmt.display_state(False, live) == "running"
    assert fmt.display_state(True, None) == "starting"


def test_status_line_has_every_part():
    v = view(
        iterations=3,
        total_failures=1,
        last_start=NOW - dt.timedelta(minutes=5),
        last_end=NOW - dt.timedelta(minutes=5),
        last_duration=0.012,
        last_outcome=Outcome.OK,
        next_run=NOW + dt.timedelta(minutes=5),
    )
    line = fmt.status_line(v, NOW)
    assert line.startswith(fmt.STATE_EMOJI["sleeping"])
    assert "**demo** (sleeping)" in line
    assert "every 10m" in line
    assert "5 minutes ago (12ms, ok)" in line
    assert f"<t:{int((NOW + dt.timedelta(minutes=5)).timestamp())}:R>" in line
    assert "3 runs, 1 failed" in line


def test_status_line_of_a_disabled_task_has_no_next_run():
    line = fmt.status_line(view(enabled=False, next_run=NOW), NOW)
    assert "(disabled)" in line and "next: none" in line and "never run" in line


def test_long_status_lists_are_paged():
    pages = fmt.status_pages([view()] * 25, NOW, per_page=10)
    assert len(pages) == 3 and "Page 3/3" in pages[-1]
    assert fmt.status_pages([], NOW) == ["No tasks to show."]


def test_error_list_shows_tracebacks_only_when_asked():
    records = [
        ErrorRecord(NOW - dt.timedelta(minutes=m), "ValueError", f"bad {m}", f"Traceback {m}")
        for m in (3, 2, 1)
    ]
    admin = fmt.error_list(records, NOW, tracebacks=False)
    assert admin.index("bad 1") < admin.index("bad 3")  # newest first
    assert "Traceback" not in admin
    owner = fmt.error_list(records, NOW, tracebacks=True)
    assert "Traceback 1" in owner and "```py" in owner
    assert fmt.error_list([], NOW, tracebacks=True) == "No recent errors."


def test_one_line_error_is_one_line_and_bounded():
    text = fmt.one_line_error({"type": "KeyError", "message": "x" * 500 + "\nsecond line"})
    assert "\n" not in text and len(text) < 320


def test_pool_table_lists_lanes_and_lag():
    lane = SimpleNamespace(workers=2, queued=1, running=1, done=40, failed=2, p95=0.25)
    lag = SimpleNamespace(p50=0.001, p99=0.004, max=0.02, samples=100)
    text = fmt.pool_table({"parse": lane}, lag)
    assert "parse" in text and "250ms" in text and "p99 4ms" in text


def test_owner_alert_lists_guilds_and_the_shared_error_without_traceback():
    def get_guild(gid):
        return SimpleNamespace(name=f"Guild {gid}")

    pending = {gid: "RuntimeError: disk full" for gid in range(1, 7)}
    pending[7] = "OSError: network down"
    text = owner_text("demo", pending, SimpleNamespace(get_guild=get_guild), "?")
    assert "**demo**" in text and "7 servers" in text
    assert "Guild 1 (1)" in text and "Guild 5 (5)" in text and "and 2 more" in text
    assert "Guild 6" not in text  # five named, the rest counted
    assert "share" in text and "RuntimeError: disk full" in text and "network down" not in text
    assert "`?tasks restart demo`" in text and "[p]" not in text
    assert "Traceback" not in text and len(text) <= 2000


def test_guild_alert_gives_the_cause_and_the_command_that_fixes_it():
    status = TaskStatus(name="demo", key=42, consecutive_failures=5, last_end=NOW)
    try:
        raise RuntimeError("disk **full**")
    except RuntimeError as exc:
        text = guild_text("demo", status, exc, "!")
    assert "`demo` stopped after 5 failures" in text and "disk \\*\\*full\\*\\*" in text
    assert "`!tasks restart demo`" in text and "`!tasks errors demo`" in text
    assert "Traceback" not in text
