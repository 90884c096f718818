import os

import pytest
import pytest_twisted
import txredisapi
from redis_server import RedisServer
from twisted.internet import reactor, task

from teltonika.redisconn import (
    RedisAddress,
    connection_pool,
    parse_url,
    ping,
)


@pytest.mark.parametrize(
    "url, address",
    [
        ("redis://localhost", RedisAddress(host="localhost")),
        ("redis://10.0.0.5:6380/2", RedisAddress(host="10.0.0.5", port=6380, db=2)),
        (
            "redis://ingest:s%40cret@redis.internal/0",
            RedisAddress(
                host="redis.internal", db=0, username="ingest", password="s@cret"
            ),
        ),
        ("redis://:pw@h", RedisAddress(host="h", password="pw")),
        ("rediss://h:6390", RedisAddress(host="h", port=6390, tls=True)),
        ("redis://[::1]:7000", RedisAddress(host="::1", port=7000)),
        ("unix:///run/redis.sock", RedisAddress(path="/run/redis.sock")),
        ("unix:///run/redis.sock?db=3", RedisAddress(path="/run/redis.sock", db=3)),
    ],
)
def test_parse_url(url, address):
    assert parse_url(url) == address


@pytest.mark.parametrize(
    "url, complaint",
    [
        ("http://localhost", "scheme"),
        ("localhost:6379", "scheme"),
        ("", "scheme"),
        ("redis://", "host name is missing"),
        ("redis://h:notaport", "port"),
        ("redis://h:70000", "port"),
        ("redis://h/x", "database must be a number"),
        ("redis://h/-1", "database must be a number"),
        ("redis://h/1/2", "only be a database number"),
        ("redis://h?db=1", "parameters are not supported"),
        ("unix://", "unix:///path"),
        ("unix://host/sock", "unix:///path"),
        ("unix:///s.sock?db=x", "database must be a number"),
        ("unix:///s.sock?timeout=1", "unknown parameter timeout"),
    ],
)
def test_parse_url_refuses(url, complaint):
    with pytest.raises(ValueError, match=complaint):
        parse_url(url)


def test_bad_url_refused_before_connecting():
    with pytest.raises(ValueError):
        connection_pool("redis://h:bad")
    with pytest.raises(ValueError):
        connection_pool("tcp://h")


@pytest_twisted.inlineCallbacks
def test_pool_replies_bytes_and_keeps_digit_strings(redis_server, redis_db):
    conn = connection_pool(redis_server.url)
    try:
        yield conn.execute_command("SET", "imei", "012345678901234")
        yield conn.execute_command("SET", "raw", b"\xff\x00")
        assert (yield conn.execute_command("GET", "imei")) == b"012345678901234"
        assert (yield conn.execute_command("GET", "raw")) == b"\xff\x00"
        assert (yield ping(conn)) is None
    finally:
        yield conn.disconnect()


@pytest_twisted.inlineCallbacks
def test_unix_db_parameter_selects_database(redis_server, redis_db):
    conn = connection_pool(redis_server.url + "?db=5", poolsize=1)
    try:
        yield conn.execute_command("SET", "k", "v")
    finally:
        yield conn.disconnect()
    redis_db.select(5)
    assert redis_db.get("k") == "v"
    assert redis_db.execute_command("SELECT", 0)
    assert redis_db.get("k") is None


@pytest_twisted.inlineCallbacks
def test_command_without_server_fails_in_bounded_time(tmp_path):
    conn = connection_pool(
        "unix://" + os.path.join(tmp_path, "nobody.sock"), reply_timeout=0.2
    )
    started = reactor.seconds()
    try:
        with pytest.raises(txredisapi.TimeoutError):
            yield ping(conn)
    finally:
        yield conn.disconnect()
    assert reactor.seconds() - started < 3


@pytest_twisted.inlineCallbacks
def test_outage_fails_commands_then_recovers(tmp_path):
    server = RedisServer(str(tmp_path)).start()
    conn = connection_pool(server.url, poolsize=2, reply_timeout=0.3)
    try:
        yield ping(conn)
        server.stop()
        with pytest.raises(txredisapi.ConnectionError):
            yield ping(conn)
        server.start()
        for _ in range(100):
            try:
                yield ping(conn)
                break
            except txredisapi.ConnectionError:
                yield task.deferLater(reactor, 0.1, lambda: None)
        assert (yield conn.execute_command("PING")) == b"PONG"
    finally:
        yield conn.disconnect()
        server.stop()
