"""Redis passwords never show, and a refused password says so: a real redis-server with `requirepass`,
and the command line run against it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from fleet.resilience import RedisAuthRefused, RedisUnavailable, check_redis, mask_secrets, mask_url
from orchestrator.redis_server import EmbeddedRedis, free_port
from tests.conftest import lo

PASSWORD = "thepassword"
ASICFLEET = [sys.executable, "-m", "orchestrator.cli"]


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(password=PASSWORD) as running:
        yield running


def _cli(url: str, *args: str, broker: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASICFLEET_REDIS_URL": url, "ASICFLEET_REDIS_RETRY_SECONDS": "2", "COLUMNS": "200"}
    env.pop("ASICFLEET_BROKER_URL", None)
    if broker:
        env["ASICFLEET_BROKER_URL"] = broker
    return subprocess.run([*ASICFLEET, *args], env=env, capture_output=True, text=True, timeout=120)


def test_urls_are_shown_with_the_password_masked() -> None:
    assert mask_url("redis://:s3cret@10.0.0.5:6379/0") == "redis://:***@10.0.0.5:6379/0"
    assert mask_url("amqp://user:s3cret@rabbit:5672//") == "amqp://user:***@rabbit:5672//"
    assert mask_url("redis://10.0.0.5:6379/0") == "redis://10.0.0.5:6379/0"
    text = "Error: cannot reach redis://:p%40ss@h:1/0 or amqp://u:x@r//"
    assert mask_secrets(text) == "Error: cannot reach redis://:***@h:1/0 or amqp://u:***@r//"


def test_a_wrong_password_is_named_as_such_without_showing_it(server: EmbeddedRedis) -> None:
    wrong = f"redis://:not-{PASSWORD}-either@127.0.0.1:{server.port}/0"
    with pytest.raises(RedisAuthRefused) as refused:
        check_redis(wrong)
    assert str(refused.value) == f"Redis at redis://:***@127.0.0.1:{server.port} refused the password"
    for args in (["scans"], ["inventory", "20260101T000000-abcdef"], ["rollout", "list"],
                 ["scan", lo("127.152.0.0/24"), "--distributed", "--no-wait"]):
        result = _cli(wrong, *args)
        assert result.returncode != 0, args
        output = result.stdout + result.stderr
        assert "refused the password" in output, (args, output)
        assert f"redis://:***@127.0.0.1:{server.port}" in output, (args, output)
        assert "not-" not in output and PASSWORD not in output and "Traceback" not in output, (args, output)


def test_a_missing_password_is_asked_for(server: EmbeddedRedis) -> None:
    result = _cli(f"redis://127.0.0.1:{server.port}/0", "scans")
    assert result.returncode != 0
    assert f"Redis at redis://127.0.0.1:{server.port} requires a password" in " ".join(result.stderr.split())


def test_the_right_password_works(server: EmbeddedRedis) -> None:
    result = _cli(server.url, "scans")
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_no_redis_there_names_the_host_never_the_password() -> None:
    dead = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    with pytest.raises(RedisUnavailable) as unavailable:
        check_redis(dead)
    assert "no Redis answers at redis://:***@127.0.0.1:" in str(unavailable.value)
    for args in (["scans"], ["rollout", "list"], ["scan", lo("127.152.0.0/24"), "--distributed"]):
        result = _cli(dead, *args)
        assert result.returncode != 0
        output = " ".join((result.stdout + result.stderr).split())
        assert "no Redis answers at redis://:***@127.0.0.1:" in output, (args, output)
        assert PASSWORD not in output and "Traceback" not in output, (args, output)


def test_a_dead_broker_with_a_password_fails_the_scan_without_showing_it(server: EmbeddedRedis) -> None:
    broker = f"redis://:broker-{PASSWORD}@127.0.0.1:{free_port()}/0"
    result = _cli(server.url, "scan", lo("127.152.0.0/24"), "--distributed", "--no-wait", broker=broker)
    assert result.returncode == 1
    output = " ".join(result.stderr.split())
    assert "the broker did not take chunk 0" in output and "marked failed" in output, output
    assert "broker-" not in output and PASSWORD not in output and "Traceback" not in output, output
