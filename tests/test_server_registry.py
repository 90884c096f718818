"""Registry, heartbeat, revocation and janitor, with whole instances on one Redis."""

import json

import pytest_twisted
from server_rig import WAIT, connect, start_server
from twisted.internet import defer, reactor, task

from teltonika import codec, keys

IMEI = "356307042441013"


async def logged_in(service, imei=IMEI):
    device = await connect(service)
    device.send(codec.encode_login(imei))
    assert await device.wait_for(1) == b"\x01"
    return device


async def until(condition, timeout=WAIT, step=0.05):
    """Wait for something another process or timer makes true."""
    for _ in range(int(timeout / step)):
        if condition():
            return
        await task.deferLater(reactor, step, lambda: None)
    raise AssertionError("condition not met within %ss" % timeout)


@pytest_twisted.ensureDeferred
async def test_registry_follows_login_and_logout(redis_server, redis_db):
    redis_db.sadd(keys.ALLOWED_DEVICES, IMEI)
    service = await start_server(redis_server.url)
    try:
        device = await logged_in(service)
        await until(lambda: redis_db.hget(keys.REGISTRY, IMEI) == "test-1")
        device.transport.loseConnection()
        await until(lambda: redis_db.hget(keys.REGISTRY, IMEI) is None)
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_device_moving_to_a_second_instance_keeps_the_newer_entry(
    redis_server, redis_db
):
    redis_db.sadd(keys.ALLOWED_DEVICES, IMEI)
    first = await start_server(redis_server.url, instance="ingest-a")
    second = await start_server(redis_server.url, instance="ingest-b")
    try:
        old = await logged_in(first)
        await until(lambda: redis_db.hget(keys.REGISTRY, IMEI) == "ingest-a")
        await logged_in(second)
        await until(lambda: redis_db.hget(keys.REGISTRY, IMEI) == "ingest-b")
        old.transport.loseConnection()
        await old.wait_closed()
        await until(lambda: IMEI not in first.factory.devices)
        assert redis_db.hget(keys.REGISTRY, IMEI) == "ingest-b"
    finally:
        await defer.gatherResults([first.stopService(), second.stopService()])


@pytest_twisted.ensureDeferred
async def test_heartbeat_key_lives_three_intervals_and_goes_at_stop(
    redis_server, redis_db
):
    service = await start_server(redis_server.url, "--heartbeat-interval", "2")
    beat = json.loads(redis_db.get(keys.heartbeat("test-1")))
    assert beat["instance"] == "test-1"
    assert set(beat) == {"instance", "pid", "host", "started_at", "connections"}
    assert 5000 < redis_db.pttl(keys.heartbeat("test-1")) <= 6000
    await service.stopService()
    assert redis_db.get(keys.heartbeat("test-1")) is None


@pytest_twisted.ensureDeferred
async def test_stale_entries_of_this_instance_are_purged_before_devices_come(
    redis_server, redis_db
):
    redis_db.hset(keys.REGISTRY, mapping={"111111111111119": "test-1", IMEI: "other"})
    service = await start_server(redis_server.url)
    try:
        assert redis_db.hgetall(keys.REGISTRY) == {IMEI: "other"}
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_revoked_device_is_disconnected_within_one_interval(
    redis_server, redis_db
):
    redis_db.sadd(keys.ALLOWED_DEVICES, IMEI)
    service = await start_server(redis_server.url, "--heartbeat-interval", "0.5")
    try:
        device = await logged_in(service)
        redis_db.srem(keys.ALLOWED_DEVICES, IMEI)
        revoked_at = reactor.seconds()
        await device.wait_closed()
        assert reactor.seconds() - revoked_at <= 0.5 + 0.2
        await until(lambda: redis_db.hget(keys.REGISTRY, IMEI) is None)
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_janitor_cleans_up_after_a_dead_instance_only(redis_server, redis_db):
    redis_db.sadd(keys.ALLOWED_DEVICES, IMEI)
    redis_db.hset(
        keys.REGISTRY,
        mapping={"490154203237518": "crashed", "352093081452251": "crashed"},
    )
    redis_db.xadd(
        keys.outbound("crashed"),
        {"command_id": "c-1", "imei": "490154203237518", "command": "getver"},
    )
    redis_db.xadd(
        keys.outbound("crashed"),
        {"command_id": "c-2", "imei": "352093081452251", "command": "getinfo"},
    )
    service = await start_server(redis_server.url, "--janitor-interval", "0.2")
    try:
        await logged_in(service)
        await until(lambda: redis_db.hgetall(keys.REGISTRY) == {IMEI: "test-1"})
        await until(lambda: not redis_db.exists(keys.outbound("crashed")))
        answers = [fields for _, fields in redis_db.xrange(keys.COMMAND_RESPONSES)]
        assert sorted(a["command_id"] for a in answers) == ["c-1", "c-2"]
        assert {(a["status"], a["reason"], a["instance"]) for a in answers} == {
            ("failed", "instance_gone", "crashed")
        }
        assert redis_db.exists(keys.heartbeat("test-1"))
    finally:
        await service.stopService()
