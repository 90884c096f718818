"""Connection registry and heartbeat, against the real Redis fixture."""

import json

import pytest
import pytest_twisted
from redis_server import RedisServer
from twisted.internet import defer, task
from twisted.logger import globalLogPublisher

from teltonika import keys
from teltonika.authority import AllowlistAuthority
from teltonika.redisconn import connection_pool, ping
from teltonika.registry import REVOKED, HeartbeatService, Registry

IMEI_A = "352093081452251"
IMEI_B = "356307042441013"
IMEI_C = "863071014567890"


@pytest_twisted.async_yield_fixture
async def conn(redis_server, redis_db):
    pool = connection_pool(redis_server.url, reply_timeout=2.0)
    yield pool
    await pool.disconnect()


class Sockets:
    """The factory as the heartbeat sees it: live IMEIs, and a way to close one."""

    def __init__(self, *imeis):
        self.live = list(imeis)
        self.closed = []

    def connected_imeis(self):
        return list(self.live)

    def disconnect(self, imei, reason):
        self.live.remove(imei)
        self.closed.append((imei, reason))


class BrokenAuthority:
    def still_allowed(self, imeis):
        return defer.fail(RuntimeError("authority unavailable"))


def heartbeat_service(conn, sockets, instance="alpha", authority=None):
    clock = task.Clock()
    registry = Registry(conn, instance, clock=clock, host="box", pid=42)
    authority = authority or AllowlistAuthority(conn)
    service = HeartbeatService(registry, authority, sockets, interval=10, clock=clock)
    return service, clock


@pytest.fixture
def captured_logs():
    events = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


@pytest_twisted.inlineCallbacks
def test_register_then_unregister(conn, redis_db):
    registry = Registry(conn, "alpha")
    yield registry.register(IMEI_A)
    assert redis_db.hgetall(keys.REGISTRY) == {IMEI_A: "alpha"}
    assert (yield registry.unregister(IMEI_A)) is True
    assert redis_db.hgetall(keys.REGISTRY) == {}
    assert (yield registry.unregister(IMEI_A)) is False


@pytest_twisted.inlineCallbacks
def test_unregister_leaves_the_newer_entry_of_another_instance(conn, redis_db):
    alpha, beta = Registry(conn, "alpha"), Registry(conn, "beta")
    yield alpha.register(IMEI_A)
    yield beta.register(IMEI_A)  # the device reconnected to beta
    assert (yield alpha.unregister(IMEI_A)) is False  # alpha's old socket closes
    assert redis_db.hgetall(keys.REGISTRY) == {IMEI_A: "beta"}


@pytest_twisted.inlineCallbacks
def test_purge_own_walks_the_whole_hash(conn, redis_db):
    mine = {"%015d" % n: "alpha" for n in range(1500)}
    theirs = {"%015d" % n: "beta" for n in range(1500, 2600)}
    redis_db.hset(keys.REGISTRY, mapping={**mine, **theirs})
    removed = yield Registry(conn, "alpha").purge_own()
    assert removed == 1500
    assert redis_db.hgetall(keys.REGISTRY) == theirs


@pytest_twisted.inlineCallbacks
def test_purge_own_on_an_empty_registry(conn, redis_db):
    assert (yield Registry(conn, "alpha").purge_own()) == 0


@pytest_twisted.inlineCallbacks
def test_rewrite_restores_ours_and_leaves_others(conn, redis_db):
    redis_db.hset(keys.REGISTRY, mapping={IMEI_B: "beta", IMEI_C: "alpha"})
    live = [IMEI_A, IMEI_B, IMEI_C]
    assert (yield Registry(conn, "alpha").rewrite(lambda: live)) == (0, 2)
    assert redis_db.hgetall(keys.REGISTRY) == {
        IMEI_A: "alpha", IMEI_B: "beta", IMEI_C: "alpha"
    }


@pytest_twisted.inlineCallbacks
def test_rewrite_removes_entries_of_devices_that_left_during_an_outage(
    conn, redis_db
):
    redis_db.hset(keys.REGISTRY, mapping={IMEI_A: "alpha", IMEI_B: "beta"})
    assert (yield Registry(conn, "alpha").rewrite(list)) == (1, 0)
    assert redis_db.hgetall(keys.REGISTRY) == {IMEI_B: "beta"}


@pytest_twisted.inlineCallbacks
def test_start_purges_leftovers_then_heartbeats(conn, redis_db):
    redis_db.hset(keys.REGISTRY, mapping={IMEI_A: "alpha", IMEI_B: "beta"})
    service, _clock = heartbeat_service(conn, Sockets())
    ready = service.whenReady()
    service.startService()
    try:
        yield ready
        assert redis_db.hgetall(keys.REGISTRY) == {IMEI_B: "beta"}
        value = json.loads(redis_db.get(keys.heartbeat("alpha")))
        assert value == {
            "instance": "alpha", "pid": 42, "host": "box",
            "started_at": 0, "connections": 0,
        }
        assert 29_000 < redis_db.pttl(keys.heartbeat("alpha")) <= 30_000
        assert service.healthy
        assert (yield service.whenReady()) is None
    finally:
        yield service.stopService()


@pytest_twisted.inlineCallbacks
def test_heartbeat_counts_connections_every_interval(conn, redis_db):
    sockets = Sockets(IMEI_A)
    redis_db.sadd(keys.ALLOWED_DEVICES, IMEI_A, IMEI_B)
    service, clock = heartbeat_service(conn, sockets)
    service.startService()
    try:
        yield service.whenReady()
        sockets.live.append(IMEI_B)
        redis_db.pexpire(keys.heartbeat("alpha"), 1_000)
        clock.advance(10)
        yield service.last_run
        value = json.loads(redis_db.get(keys.heartbeat("alpha")))
        assert value["connections"] == 2
        assert redis_db.pttl(keys.heartbeat("alpha")) > 29_000
        assert sockets.closed == []
    finally:
        yield service.stopService()


@pytest_twisted.inlineCallbacks
def test_revoked_device_is_disconnected_on_the_next_tick(conn, redis_db):
    redis_db.sadd(keys.ALLOWED_DEVICES, IMEI_A, IMEI_B, IMEI_C)
    sockets = Sockets(IMEI_A, IMEI_B, IMEI_C)
    service, clock = heartbeat_service(conn, sockets)
    service.startService()
    try:
        yield service.whenReady()
        assert sockets.closed == []
        redis_db.srem(keys.ALLOWED_DEVICES, IMEI_B)
        clock.advance(9.9)
        assert service.last_run.called  # no tick yet: still the first one
        assert sockets.closed == []
        clock.advance(0.1)
        yield service.last_run
        assert sockets.closed == [(IMEI_B, REVOKED)]
        assert sockets.live == [IMEI_A, IMEI_C]
    finally:
        yield service.stopService()


@pytest_twisted.inlineCallbacks
def test_authority_failure_disconnects_nobody(conn, redis_db, captured_logs):
    sockets = Sockets(IMEI_A)
    service, clock = heartbeat_service(conn, sockets, authority=BrokenAuthority())
    service.startService()
    try:
        yield service.last_run
        assert sockets.closed == []
        assert not service.healthy
        assert any("authority unavailable" in repr(e.get("log_failure", ""))
                   or "authority unavailable" in str(e.get("error", ""))
                   for e in captured_logs)
        clock.advance(10)  # the loop goes on
        yield service.last_run
        assert redis_db.exists(keys.heartbeat("alpha"))
    finally:
        yield service.stopService()


@pytest_twisted.inlineCallbacks
def test_clean_stop_removes_entries_and_heartbeat(conn, redis_db):
    sockets = Sockets(IMEI_A)
    service, clock = heartbeat_service(conn, sockets)
    service.startService()
    yield service.whenReady()
    yield service.registry.register(IMEI_A)
    redis_db.hset(keys.REGISTRY, IMEI_B, "beta")
    yield service.stopService()
    assert redis_db.hgetall(keys.REGISTRY) == {IMEI_B: "beta"}
    assert not redis_db.exists(keys.heartbeat("alpha"))
    clock.advance(60)  # the loop is stopped: nothing comes back
    assert service.last_run.called
    assert not redis_db.exists(keys.heartbeat("alpha"))


@pytest_twisted.inlineCallbacks
def test_redis_restart_mid_heartbeat(tmp_path, captured_logs):
    server = RedisServer(str(tmp_path), persistent=True).start()
    blocking = server.client()
    conn = connection_pool(server.url, reply_timeout=0.3)
    sockets = Sockets(IMEI_A, IMEI_B)
    blocking.sadd(keys.ALLOWED_DEVICES, IMEI_A, IMEI_B)
    service, clock = heartbeat_service(conn, sockets)
    try:
        service.startService()
        yield service.whenReady()
        yield service.registry.register(IMEI_A)
        yield service.registry.register(IMEI_B)

        server.stop()
        clock.advance(10)
        yield service.last_run  # fails within the connection's deadline
        assert not service.healthy
        assert service._loop.running
        assert any(e.get("log_failure") is not None for e in captured_logs)

        sockets.live.remove(IMEI_B)  # it left; its unregister was lost
        server.start()  # back with what it had (AOF)
        assert blocking.hgetall(keys.REGISTRY) == {IMEI_A: "alpha", IMEI_B: "alpha"}
        blocking.hdel(keys.REGISTRY, IMEI_A)  # as a janitor would have
        yield wait_until_answering(conn)
        clock.advance(10)
        yield service.last_run
        assert service.healthy
        assert blocking.exists(keys.heartbeat("alpha"))
        # Rewritten from the live sockets: A is back, B is gone.
        assert blocking.hgetall(keys.REGISTRY) == {IMEI_A: "alpha"}
        assert sockets.closed == []
    finally:
        yield service.stopService()
        yield conn.disconnect()
        blocking.close()
        server.stop()


@defer.inlineCallbacks
def wait_until_answering(conn):
    """The pool reconnects on its own schedule; each failed ping is bounded."""
    from twisted.internet import reactor

    for _ in range(100):
        try:
            yield ping(conn)
            return
        except Exception:
            yield task.deferLater(reactor, 0.1, lambda: None)
    raise AssertionError("Redis did not come back")


class SlowAuthority:
    """Its first answer waits for the test; later ones come at once."""

    def __init__(self):
        self.pending = []

    def still_allowed(self, imeis):
        if self.pending:
            return defer.succeed(set(imeis))
        d = defer.Deferred()
        self.pending.append(d)
        return d


@pytest_twisted.inlineCallbacks
def test_a_slow_tick_is_not_overlapped(conn, redis_db, captured_logs):
    authority = SlowAuthority()
    sockets = Sockets(IMEI_A)
    service, clock = heartbeat_service(conn, sockets, authority=authority)
    service.startService()
    try:
        first = service.last_run
        while not authority.pending:  # the first tick gets to the allowlist
            yield ping(conn)
        clock.advance(10)
        assert service.last_run is first
        assert len(authority.pending) == 1
        assert any("skipped" in (e.get("log_format") or "") for e in captured_logs)
        authority.pending[0].callback({IMEI_A})
        yield first
        assert service.healthy
        clock.advance(10)
        assert service.last_run is not first
    finally:
        if not authority.pending[0].called:
            authority.pending[0].callback({IMEI_A})
        yield service.stopService()
