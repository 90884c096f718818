import os
import socket
import sys

import pytest
import pytest_twisted
import txredisapi
from redis_server import RedisServer
from twisted.logger import capturedLogs

from teltonika.embedded import EmbeddedRedis
from teltonika.redisconn import connection_pool, parse_url, ping


@pytest_twisted.inlineCallbacks
def test_data_survives_a_restart_in_the_same_state_dir(tmp_path):
    state_dir = tmp_path / "state" / "redis"
    first = EmbeddedRedis(str(state_dir))
    with capturedLogs() as events:
        first.startService()
        yield first.whenReady()
    assert parse_url(first.url).path == str(state_dir / "redis.sock")
    assert oct(os.stat(state_dir).st_mode & 0o777) == "0o700"
    assert any("redis-server: " in e.get("log_format", "") for e in events)
    conn = connection_pool(first.url)
    yield conn.execute_command("SET", "kept", "yes")
    yield conn.disconnect()
    yield first.stopService()
    assert not first.running
    assert (state_dir / "appendonly.aof").exists()

    second = EmbeddedRedis(str(state_dir))
    second.startService()
    try:
        yield second.whenReady()
        conn = connection_pool(second.url)
        assert (yield conn.execute_command("GET", "kept")) == b"yes"
        yield conn.disconnect()
    finally:
        yield second.stopService()


@pytest_twisted.inlineCallbacks
def test_stop_waits_for_the_process_to_end(tmp_path):
    embedded = EmbeddedRedis(str(tmp_path))
    embedded.startService()
    yield embedded.whenReady()
    pid = embedded._process.transport.pid
    conn = connection_pool(embedded.url, reply_timeout=0.2)
    yield embedded.stopService()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(txredisapi.ConnectionError):
        yield ping(conn)
    yield conn.disconnect()
    # a late whenReady still says how the start went
    assert (yield embedded.whenReady()) is None


@pytest_twisted.inlineCallbacks
def test_stale_socket_does_not_block_start(tmp_path):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "redis.sock"))
    stale.close()  # the file stays, nobody listens: like after a crash
    embedded = EmbeddedRedis(str(tmp_path))
    embedded.startService()
    try:
        yield embedded.whenReady()
        conn = connection_pool(embedded.url)
        yield ping(conn)
        yield conn.disconnect()
    finally:
        yield embedded.stopService()


def test_refuses_a_state_dir_another_server_listens_in(tmp_path):
    other = RedisServer(str(tmp_path)).start()
    try:
        embedded = EmbeddedRedis(str(tmp_path))
        with pytest.raises(RuntimeError, match="already listening"):
            embedded.startService()
        assert not embedded.running
        assert other.client().ping()
    finally:
        other.stop()


@pytest_twisted.inlineCallbacks
def test_process_that_dies_first_fails_readiness(tmp_path):
    embedded = EmbeddedRedis(str(tmp_path), executable="/bin/false")
    with capturedLogs() as events:
        embedded.startService()
        with pytest.raises(RuntimeError, match="exited before it answered"):
            yield embedded.whenReady()
    assert any("exited unexpectedly" in e.get("log_format", "") for e in events)
    yield embedded.stopService()


@pytest_twisted.inlineCallbacks
def test_process_that_never_answers_times_out_and_is_stopped(tmp_path):
    silent = tmp_path / "silent-redis"
    silent.write_text("#!/bin/sh\nexec sleep 60\n")
    silent.chmod(0o755)
    embedded = EmbeddedRedis(
        str(tmp_path / "state"), executable=str(silent), ready_timeout=0.3
    )
    embedded.startService()
    with pytest.raises(RuntimeError, match=r"did not answer within 0\.3 seconds"):
        yield embedded.whenReady()
    yield embedded.stopService()
    assert embedded._process is None


@pytest_twisted.inlineCallbacks
def test_process_ignoring_sigterm_is_killed(tmp_path):
    stubborn = tmp_path / "stubborn-redis"
    stubborn.write_text(
        "#!%s\nimport signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n"
        % (sys.executable,)
    )
    stubborn.chmod(0o755)
    embedded = EmbeddedRedis(
        str(tmp_path / "state"),
        executable=str(stubborn),
        ready_timeout=0.2,
        stop_timeout=0.3,
    )
    embedded.startService()
    with pytest.raises(RuntimeError):
        yield embedded.whenReady()
    with capturedLogs() as events:
        yield embedded.stopService()
    assert any("killing it" in e.get("log_format", "") for e in events)


def test_stop_without_start_is_harmless(tmp_path):
    embedded = EmbeddedRedis(str(tmp_path))
    assert embedded.stopService().called
