"""Rate limits per channel, counted in the database so that they hold across processes."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time

import pytest

from ccm.db import Database
from ccm.runs.ratelimit import ChannelLimits
from ccm.settings import SettingsError, load_settings


HITS = """
import sys
from ccm.db import Database
from ccm.runs.ratelimit import ChannelLimits
limits = ChannelLimits({"limits": {"sms": "5/hour", "storage": ""}}, Database(sys.argv[1]))
print(sum(1 for _ in range(4) if limits.limiter.hit(limits.items["sms"][0], "sms")))
"""


def test_the_total_across_processes_is_the_limit(engine):
    url = engine.settings["ccm"]["database_url"]
    workers = [subprocess.Popen([sys.executable, "-c", HITS, url], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    taken = [int(worker.communicate(timeout=60)[0]) for worker in workers]
    assert sum(taken) == 5  # 8 tries in two processes, 5 allowed in the hour


def test_short_windows_wait_and_daily_ones_defer(engine):
    slept = []
    limits = ChannelLimits({"limits": {"email": "2/second; 3/day", "storage": ""}}, engine.db, sleep=lambda s: (slept.append(s), time.sleep(s)))
    assert [limits.acquire("email") for _ in range(3)] == [None, None, None]
    assert slept, "the third message waited for the next second"
    later = limits.acquire("email")
    assert later is not None and (later - dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)).total_seconds() > 3600
    assert limits.acquire("sms") is None  # no limit configured for SMS


def test_a_run_defers_what_a_daily_limit_does_not_allow(loaded, runner):
    loaded.settings["limits"]["sms"] = "1/day"
    result = runner.invoke(args=["run", "statement", "--cycle", "2026-11", "--json"])
    report = json.loads(result.stdout)
    assert report["by_channel"]["sms"] == {"sent": 1, "deferred": 1}
    assert result.exit_code == 5  # waiting for a later time, not paused
    assert report["error"].startswith("1 message waits for a later time (1 sms rate limit reached), the first until ")


def test_a_bad_limit_is_a_settings_error():
    with pytest.raises(SettingsError, match="limits.email"):
        load_settings(environ={"CCM_LIMITS__EMAIL": "fast"})


def test_counters_can_live_in_redis_for_many_machines(engine):
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError:
        pytest.skip("Redis is not available on 127.0.0.1:6379")
    limits = ChannelLimits({"limits": {"print": "2/hour", "storage": "redis://127.0.0.1:6379/8"}}, engine.db)
    limits.storage.reset()
    assert [limits.acquire("print") is None for _ in range(3)] == [True, True, False]
    limits.storage.reset()
