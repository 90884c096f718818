"""The janitor, with two instances sharing the real Redis fixture."""

import pytest_twisted
from twisted.internet import defer, task
from twisted.logger import globalLogPublisher

from teltonika import keys
from teltonika.janitor import Janitor, JanitorRun, JanitorService
from teltonika.redisconn import connection_pool
from teltonika.registry import Registry

IMEI_A = "352093081452251"
IMEI_B = "356307042441013"
IMEI_C = "863071014567890"
AT = 1_700_000_000_000


@pytest_twisted.async_yield_fixture
async def conn(redis_server, redis_db):
    pool = connection_pool(redis_server.url, reply_timeout=2.0)
    yield pool
    await pool.disconnect()


def janitor(conn, instance="beta"):
    clock = task.Clock()
    clock.advance(AT / 1000)
    return Janitor(conn, instance, clock=clock)


def command(redis_db, instance, command_id, imei):
    return redis_db.xadd(
        keys.outbound(instance),
        {"command_id": command_id, "imei": imei, "command": "getinfo"},
    )


def responses(redis_db):
    return [fields for _, fields in redis_db.xrange(keys.COMMAND_RESPONSES)]


def gone(command_id, imei, instance):
    return {
        "command_id": command_id, "imei": imei, "instance": instance,
        "status": "failed", "reason": "instance_gone", "at": str(AT),
    }


@defer.inlineCallbacks
def two_instances(conn, redis_db):
    """alpha holds IMEI_A and IMEI_B, beta holds IMEI_C; both have commands."""
    alpha, beta = Registry(conn, "alpha"), Registry(conn, "beta")
    for registry, imeis in ((alpha, [IMEI_A, IMEI_B]), (beta, [IMEI_C])):
        for imei in imeis:
            yield registry.register(imei)
        yield registry.write_heartbeat(len(imeis), 30_000)
        redis_db.xgroup_create(keys.outbound(registry.instance), keys.COMMAND_GROUP,
                               id="0", mkstream=True)
    command(redis_db, "alpha", "c1", IMEI_A)
    # c1 was read by alpha before it died: pending, not acknowledged.
    redis_db.xreadgroup(keys.COMMAND_GROUP, "alpha", {keys.outbound("alpha"): ">"})
    command(redis_db, "alpha", "c2", IMEI_B)  # still unread
    command(redis_db, "beta", "c3", IMEI_C)


@pytest_twisted.inlineCallbacks
def test_dead_instance_is_buried_and_the_live_one_left_alone(conn, redis_db):
    yield two_instances(conn, redis_db)
    redis_db.delete(keys.heartbeat("alpha"))  # alpha's heartbeat ran out

    run = yield janitor(conn).run()

    assert run == JanitorRun(True, ("alpha",), entries_removed=2,
                             commands_failed=2, streams_deleted=1)
    assert redis_db.hgetall(keys.REGISTRY) == {IMEI_C: "beta"}
    assert responses(redis_db) == [gone("c1", IMEI_A, "alpha"),
                                   gone("c2", IMEI_B, "alpha")]
    assert not redis_db.exists(keys.outbound("alpha"))
    assert redis_db.xlen(keys.outbound("beta")) == 1
    assert redis_db.exists(keys.heartbeat("beta"))
    assert not redis_db.exists(keys.JANITOR_LOCK)


@pytest_twisted.inlineCallbacks
def test_nothing_to_do_when_everyone_is_alive(conn, redis_db):
    yield two_instances(conn, redis_db)
    run = yield janitor(conn).run()
    assert run == JanitorRun(True)
    assert len(redis_db.hgetall(keys.REGISTRY)) == 3
    assert responses(redis_db) == []


@pytest_twisted.inlineCallbacks
def test_entry_rewritten_elsewhere_is_kept(conn, redis_db):
    yield two_instances(conn, redis_db)
    redis_db.delete(keys.heartbeat("alpha"))
    stale = janitor(conn)
    scanned = stale._without_heartbeat

    async def then_device_moves_to_beta(instances):
        dead = await scanned(instances)
        await Registry(conn, "beta").register(IMEI_B)
        return dead

    stale._without_heartbeat = then_device_moves_to_beta
    run = yield stale.run()
    assert run.entries_removed == 1
    assert redis_db.hgetall(keys.REGISTRY) == {IMEI_B: "beta", IMEI_C: "beta"}


@pytest_twisted.inlineCallbacks
def test_instance_back_before_cleanup_is_spared(conn, redis_db):
    yield two_instances(conn, redis_db)
    hasty = janitor(conn)

    async def everyone_looks_dead(instances):
        return instances

    hasty._without_heartbeat = everyone_looks_dead
    run = yield hasty.run()
    assert run == JanitorRun(True)
    assert len(redis_db.hgetall(keys.REGISTRY)) == 3
    assert redis_db.xlen(keys.outbound("alpha")) == 2
    assert responses(redis_db) == []


@pytest_twisted.inlineCallbacks
def test_orphan_stream_is_answered_even_for_incomplete_entries(conn, redis_db):
    command(redis_db, "ghost", "c9", IMEI_A)
    redis_db.xadd(keys.outbound("ghost"), {"command": "getver"})
    redis_db.set(keys.outbound("notastream"), "x")

    run = yield janitor(conn).run()

    assert run == JanitorRun(True, ("ghost",), commands_failed=2, streams_deleted=1)
    assert responses(redis_db) == [
        gone("c9", IMEI_A, "ghost"),
        {"instance": "ghost", "status": "failed", "reason": "instance_gone",
         "at": str(AT)},
    ]
    assert not redis_db.exists(keys.outbound("ghost"))
    assert redis_db.get(keys.outbound("notastream")) == "x"


@pytest_twisted.inlineCallbacks
def test_empty_orphan_stream_is_deleted(conn, redis_db):
    redis_db.xgroup_create(keys.outbound("ghost"), keys.COMMAND_GROUP, mkstream=True)
    run = yield janitor(conn).run()
    assert run == JanitorRun(True, ("ghost",), streams_deleted=1)
    assert responses(redis_db) == []
    assert not redis_db.exists(keys.outbound("ghost"))


@pytest_twisted.inlineCallbacks
def test_responses_stream_is_capped(conn, redis_db):
    for n in range(300):
        command(redis_db, "ghost", "c%d" % n, IMEI_A)
    import teltonika.janitor

    original = teltonika.janitor.RESPONSES_MAXLEN
    teltonika.janitor.RESPONSES_MAXLEN = 100
    try:
        run = yield janitor(conn).run()
    finally:
        teltonika.janitor.RESPONSES_MAXLEN = original
    assert run.commands_failed == 300
    assert redis_db.xlen(keys.COMMAND_RESPONSES) < 300


@pytest_twisted.inlineCallbacks
def test_only_one_janitor_holds_the_lock(conn, redis_db):
    yield two_instances(conn, redis_db)
    redis_db.delete(keys.heartbeat("alpha"))
    runs = yield defer.gatherResults(
        [janitor(conn, "beta").run(), janitor(conn, "gamma").run()]
    )
    assert sorted(run.locked for run in runs) == [False, True]
    assert sum(run.commands_failed for run in runs) == 2
    assert len(responses(redis_db)) == 2
    assert not redis_db.exists(keys.JANITOR_LOCK)


@pytest_twisted.inlineCallbacks
def test_lock_held_elsewhere_means_no_run(conn, redis_db):
    yield two_instances(conn, redis_db)
    redis_db.delete(keys.heartbeat("alpha"))
    redis_db.set(keys.JANITOR_LOCK, "gamma", px=30_000)
    run = yield janitor(conn).run()
    assert run == JanitorRun(False)
    assert len(redis_db.hgetall(keys.REGISTRY)) == 3
    assert redis_db.get(keys.JANITOR_LOCK) == "gamma"


@pytest_twisted.inlineCallbacks
def test_lock_taken_over_during_a_run_is_not_released(conn, redis_db):
    slow = janitor(conn)
    original = slow._clean

    async def lock_expires_meanwhile():
        redis_db.set(keys.JANITOR_LOCK, "gamma", px=30_000)
        return await original()

    slow._clean = lock_expires_meanwhile
    run = yield slow.run()
    assert run.locked
    assert redis_db.get(keys.JANITOR_LOCK) == "gamma"


@pytest_twisted.inlineCallbacks
def test_lock_is_ours_and_expires_if_we_die_holding_it(conn, redis_db):
    holder = janitor(conn)
    original = holder._clean
    seen = []

    async def look_at_the_lock():
        seen.append((redis_db.get(keys.JANITOR_LOCK), redis_db.pttl(keys.JANITOR_LOCK)))
        return await original()

    holder._clean = look_at_the_lock
    yield holder.run()
    [(owner, ttl)] = seen
    assert owner == "beta"
    assert 29_000 < ttl <= 30_000


class FlakyJanitor:
    def __init__(self, *results):
        self.results = list(results)
        self.runs = 0

    def run(self):
        self.runs += 1
        result = self.results.pop(0)
        if isinstance(result, Exception):
            return defer.fail(result)
        return defer.succeed(result)


def test_service_runs_at_start_and_every_interval_and_survives_failures():
    events = []
    globalLogPublisher.addObserver(events.append)
    clock = task.Clock()
    flaky = FlakyJanitor(
        JanitorRun(True), ConnectionError("Redis down"),
        JanitorRun(True, ("alpha",), 2, 2, 1),
    )
    service = JanitorService(flaky, interval=30, clock=clock)
    try:
        service.startService()
        assert flaky.runs == 1
        clock.advance(30)
        assert flaky.runs == 2
        assert service.last_run.called
        clock.advance(30)
        assert flaky.runs == 3
        assert service.last_run.result == JanitorRun(True, ("alpha",), 2, 2, 1)
    finally:
        service.stopService()
        globalLogPublisher.removeObserver(events.append)
    clock.advance(300)
    assert flaky.runs == 3
    assert any("Redis down" in str(e.get("log_failure", "")) for e in events)
    assert any("instances gone: alpha" in str(e.get("log_format", "")) or
               e.get("instances") == "alpha" for e in events)


def test_service_skips_a_run_while_the_previous_is_busy():
    clock = task.Clock()
    pending = defer.Deferred()

    class Stuck:
        runs = 0

        def run(self):
            self.runs += 1
            return pending

    stuck = Stuck()
    service = JanitorService(stuck, interval=30, clock=clock)
    service.startService()
    clock.advance(30)
    assert stuck.runs == 1
    pending.callback(JanitorRun(False))
    clock.advance(30)
    assert stuck.runs == 2
    service.stopService()
