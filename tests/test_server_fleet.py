"""The server under a fleet of simulated devices, and through a Redis outage."""

import json

import pytest_twisted
import treq
from redis_server import RedisServer
from server_rig import WAIT, device_port, launch_server, start_server
from twisted.internet import reactor, task

from teltonika import keys
from teltonika.sim.config import Config
from teltonika.sim.fleet import Fleet
from teltonika.sim.imeis import make_imeis


def stored_by_device(client):
    """Telemetry entries grouped by IMEI, in stream order."""
    by_imei = {}
    for _, fields in client.xrange(keys.DEFAULT_TELEMETRY_STREAM):
        by_imei.setdefault(fields["imei"], []).append(fields)
    return by_imei


def assert_stored_exactly_once_in_order(fleet, client):
    stored = stored_by_device(client)
    assert sorted(stored) == sorted(device.imei for device in fleet.devices)
    for device in fleet.devices:
        entries = stored[device.imei]
        assert [int(entry["ts"]) for entry in entries] == [
            int(record.timestamp) for record in device.generated
        ]
        assert [int(entry["speed"]) for entry in entries] == [
            record.speed for record in device.generated
        ]
        assert device.acked == len(device.generated)


@pytest_twisted.ensureDeferred
async def test_200_devices_20_frames_each_stored_once_in_order(redis_server, redis_db):
    imeis = make_imeis(200)
    redis_db.sadd(keys.ALLOWED_DEVICES, *imeis)
    service = await start_server(redis_server.url)
    try:
        config = Config(
            frames=20,
            records=3,
            period=0.1,
            codec="mix",
            ramp=2000,
            history=True,
            seed=1,
        )
        fleet = Fleet(reactor, "127.0.0.1", device_port(service), imeis, config)
        stats = await fleet.start().addTimeout(60, reactor)
        assert stats.frames_acked == 200 * 20
        assert stats.logins_refused == 0
        assert_stored_exactly_once_in_order(fleet, redis_db)
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_redis_outage_withholds_acks_then_stores_everything_once(tmp_path):
    redis = RedisServer(str(tmp_path), persistent=True).start()
    client = redis.client()
    imeis = make_imeis(20, prefix="35630704")
    client.sadd(keys.ALLOWED_DEVICES, *imeis)
    service = await start_server(redis.url, "--login-timeout", "2")
    config = Config(
        frames=25,
        records=2,
        period=0.2,
        ramp=1000,
        ack_timeout=1.0,
        backoff_initial=0.2,
        backoff_max=1.0,
        history=True,
        seed=2,
    )
    fleet = Fleet(reactor, "127.0.0.1", device_port(service), imeis, config)
    done = fleet.start()
    try:
        await task.deferLater(reactor, 1.0, lambda: None)
        redis.stop()
        # A frame whose script ran just before the stop may still be ACKed.
        await task.deferLater(reactor, 0.5, lambda: None)
        acked_while_down = fleet.stats.frames_acked
        await task.deferLater(reactor, 2.5, lambda: None)
        assert fleet.stats.frames_acked == acked_while_down
        assert not done.called
        redis.start()
        await done.addTimeout(WAIT * 3, reactor)
        assert fleet.stats.frames_acked > acked_while_down
        assert_stored_exactly_once_in_order(fleet, redis.client())
        failed_stores = service.metrics.registry.get_sample_value(
            "teltonika_redis_errors_total", {"operation": "telemetry"}
        )
        assert failed_stores > 0
    finally:
        fleet.stop()
        await service.stopService()
        redis.stop()


@pytest_twisted.ensureDeferred
async def test_not_ready_until_redis_answers_then_accepting(tmp_path):
    redis = RedisServer(str(tmp_path))
    service = launch_server(redis.url, "--redis-timeout", "0.5")
    try:
        while service.health_port is None:
            await task.deferLater(reactor, 0.05, lambda: None)
        ready = f"http://127.0.0.1:{service.health_port.getHost().port}/ready"
        response = await treq.get(ready)
        body = json.loads(await response.text())
        assert response.code == 503
        assert body["status"] == "not_ready"
        assert "device listeners are not up" in body["reasons"]
        assert any(reason.startswith("Redis: ") for reason in body["reasons"])
        assert not service.accepting.called
        redis.start()
        await service.accepting.addTimeout(WAIT, reactor)
        response = await treq.get(ready)
        assert response.code == 200
    finally:
        await service.stopService()
        redis.stop()
