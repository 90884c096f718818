"""The inbound server end to end: real TCP on loopback, real Redis."""

import json
import struct

import pytest
import pytest_twisted
import treq
import twisted.test
from server_rig import RawDevice, connect, start_server
from test_codec_vectors import VECTORS, is_valid_avl
from twisted.internet import defer, reactor, ssl
from twisted.internet.endpoints import SSL4ClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.filepath import FilePath

from teltonika import codec, keys

IMEI = "356307042441013"
ALLOWED = [IMEI, "352093081452251", "123456789012345"]

VALID_AVL = [
    vector
    for vector in VECTORS
    if any(is_valid_avl(vector, kind) for kind in ("codec8", "codec8e", "codec16"))
]
BAD_AVL = [
    vector
    for vector in VECTORS
    if vector["kind"] in ("codec8", "codec8e", "codec16", "codec7_gh3000")
    and vector not in VALID_AVL
]


@pytest.fixture
def allowed(redis_db):
    redis_db.sadd(keys.ALLOWED_DEVICES, *ALLOWED)
    return redis_db


@pytest.fixture
def server(redis_server, allowed):
    service = pytest_twisted.blockon(
        defer.ensureDeferred(start_server(redis_server.url))
    )
    yield service
    pytest_twisted.blockon(service.stopService())


async def logged_in_device(service, imei=IMEI):
    device = await connect(service)
    device.send(codec.encode_login(imei))
    assert await device.wait_for(1) == b"\x01"
    device.received = b""
    return device


def entries(redis_db):
    return [fields for _, fields in redis_db.xrange(keys.DEFAULT_TELEMETRY_STREAM)]


def degrees(wire):
    return f"{wire / 1e7:.7f}"


_STATED = {
    "timestamp_ms": ("ts", int),
    "priority": ("priority", int),
    "altitude": ("alt", int),
    "angle": ("angle", int),
    "satellites": ("sat", int),
    "speed": ("speed", int),
    "event_io_id": ("event", int),
    "event_id": ("event", int),
    "generation_type": ("gen", int),
}


def assert_entry_matches(entry, stated):
    for name, value in stated.items():
        if name in _STATED:
            field, kind = _STATED[name]
            assert kind(entry[field]) == value, name
        elif name == "lat_e7":
            assert entry["lat"] == degrees(value)
        elif name == "lon_e7":
            assert entry["lon"] == degrees(value)
        elif name in ("lat_e7_approx", "lon_e7_approx"):
            field = name[:3]
            assert abs(float(entry[field]) - value / 1e7) < 1e-4
        elif name == "io":
            io = json.loads(entry["io"])
            assert {key: io[key] for key in value} == value


@pytest.mark.parametrize("vector", VALID_AVL, ids=[v["id"] for v in VALID_AVL])
@pytest_twisted.ensureDeferred
async def test_every_valid_corpus_frame_is_stored_then_acked(server, allowed, vector):
    frame = bytes.fromhex(vector["hex"])
    packet = codec.decode_frame(frame)
    device = await logged_in_device(server)
    device.send(frame)
    ack = await device.wait_for(4)
    assert ack == struct.pack(">I", len(packet.records))
    stored = entries(allowed)
    assert len(stored) == len(packet.records)
    codec_name = {"codec8": "8", "codec8e": "8E", "codec16": "16"}[vector["kind"]]
    for entry in stored:
        assert entry["imei"] == IMEI
        assert entry["codec"] == codec_name
        assert entry["instance"] == "test-1"
        assert ("gen" in entry) == (codec_name == "16")
    stated = (vector.get("expect") or {}).get("records_detail", [])
    for entry, stated_record in zip(stored, stated, strict=False):
        assert_entry_matches(entry, stated_record)
    assert len(stated) in (0, len(stored))


@pytest.mark.parametrize("vector", BAD_AVL, ids=[v["id"] for v in BAD_AVL])
@pytest_twisted.ensureDeferred
async def test_bad_corpus_frames_get_no_ack_and_no_entry(server, allowed, vector):
    device = await logged_in_device(server)
    device.send(bytes.fromhex(vector["hex"]))
    # A frame that is short of its declared length waits for the rest: end it.
    reactor.callLater(0.5, device.transport.loseConnection)
    received = await device.wait_closed()
    assert received == b""
    assert entries(allowed) == []


@pytest_twisted.ensureDeferred
async def test_resent_frame_is_acked_but_stored_once(server, allowed):
    frame = bytes.fromhex(VALID_AVL[0]["hex"])
    device = await logged_in_device(server)
    device.send(frame)
    await device.wait_for(4)
    device.transport.loseConnection()
    again = await logged_in_device(server)
    again.send(frame)
    assert await again.wait_for(4) == device.received
    assert len(entries(allowed)) == len(codec.decode_frame(frame).records)


@pytest_twisted.ensureDeferred
async def test_device_message_goes_to_the_messages_stream(server, allowed):
    device = await logged_in_device(server)
    device.send(
        codec.encode_message("13", 0x06, b"hello\xff", timestamp=1_680_000_000_000)
    )
    device.send(codec.encode_avl("8", []))
    assert await device.wait_for(4) == b"\x00\x00\x00\x00"
    [(_, message)] = allowed.xrange(keys.DEVICE_MESSAGES)
    assert message["imei"] == IMEI
    assert message["codec"] == "13"
    assert message["ts"] == "1680000000000"
    assert message["text"] == "hello\ufffd"
    assert message["hex"] == "68656c6c6fff"


# Bad input: each case's outcome, and the process keeps serving others.


async def refused(service, data):
    device = await connect(service)
    device.send(data)
    return await device.wait_closed()


BAD_LOGINS = {
    "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "length_0": b"\x00\x00" + IMEI.encode(),
    "length_65535": b"\xff\xff" + IMEI.encode(),
    "non_digit_imei": b"\x00\x0f35630704244101X",
    "not_allowed": codec.encode_login("490154203237518"),
    "frame_before_login": bytes.fromhex(VALID_AVL[0]["hex"]),
    "4_gib_frame_before_login": b"\x00\x00\x00\x00\xff\xff\xff\xff",
}


@pytest.mark.parametrize("name", BAD_LOGINS)
@pytest_twisted.ensureDeferred
async def test_bad_login_gets_00_and_a_closed_socket(server, allowed, name):
    good = await logged_in_device(server)
    assert await refused(server, BAD_LOGINS[name]) == b"\x00"
    good.send(bytes.fromhex(VALID_AVL[0]["hex"]))
    assert len(await good.wait_for(4)) == 4
    assert allowed.hgetall(keys.REGISTRY) == {IMEI: "test-1"}


@pytest_twisted.ensureDeferred
async def test_4_gib_frame_after_login_closes_without_reading_it(server, allowed):
    device = await logged_in_device(server)
    device.send(b"\x00\x00\x00\x00\xff\xff\xff\xff\x08\x01")
    assert await device.wait_closed() == b""
    assert (
        server.metrics.registry.get_sample_value(
            "teltonika_bad_frames_total", {"reason": "too_large"}
        )
        == 1
    )


@pytest_twisted.ensureDeferred
async def test_truncated_frame_then_disconnect_stores_nothing(server, allowed):
    device = await logged_in_device(server)
    device.send(bytes.fromhex(VALID_AVL[0]["hex"])[:-3])
    device.transport.loseConnection()
    await device.wait_closed()
    assert entries(allowed) == []
    other = await logged_in_device(server, "352093081452251")
    other.send(bytes.fromhex(VALID_AVL[0]["hex"]))
    await other.wait_for(4)
    assert len(entries(allowed)) > 0


@pytest_twisted.ensureDeferred
async def test_a_thousand_sockets_that_never_log_in(redis_server, allowed):
    service = await start_server(redis_server.url, "--login-timeout", "3")
    try:
        idle = [await connect(service) for _ in range(1000)]
        good = await logged_in_device(service)
        good.send(bytes.fromhex(VALID_AVL[0]["hex"]))
        assert len(await good.wait_for(4)) == 4
        closed = await defer.gatherResults([d.wait_closed() for d in idle])
        assert set(closed) == {b"\x00"}
        assert len(service.factory.connections) == 1
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_tls_listener_serves_devices(redis_server, allowed):
    key = FilePath(twisted.test.__file__).sibling("server.pem").path
    service = await start_server(
        redis_server.url,
        "--listen",
        f"ssl:0:interface=127.0.0.1:privateKey={key}",
    )
    try:
        port = service.device_ports[-1].getHost().port
        endpoint = SSL4ClientEndpoint(
            reactor, "127.0.0.1", port, ssl.CertificateOptions()
        )
        device = await endpoint.connect(Factory.forProtocol(RawDevice))
        device.send(codec.encode_login(IMEI) + bytes.fromhex(VALID_AVL[0]["hex"]))
        assert len(await device.wait_for(5)) == 5
        assert device.received[:1] == b"\x01"
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_metrics_show_what_an_operator_watches(server, allowed):
    device = await logged_in_device(server)
    device.send(bytes.fromhex(VALID_AVL[0]["hex"]))
    await device.wait_for(4)
    await refused(server, codec.encode_login("490154203237518"))
    port = server.health_port.getHost().port
    response = await treq.get(f"http://127.0.0.1:{port}/metrics")
    text = await response.text()
    for line in (
        "teltonika_connections 1.0",
        'teltonika_logins_total{result="accepted"} 1.0',
        'teltonika_logins_total{result="refused"} 1.0',
        'teltonika_frames_total{codec="8"} 1.0',
        "teltonika_records_total 1.0",
        "teltonika_crc_errors_total 0.0",
        "teltonika_ack_latency_seconds_count 1.0",
    ):
        assert line in text.splitlines()
    assert "# TYPE teltonika_redis_errors_total counter" in text


@pytest_twisted.ensureDeferred
async def test_open_authority_is_warned_about_at_start_and_lets_anyone_in(
    redis_server, redis_db
):
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        service = await start_server(redis_server.url, "--authority", "open")
    finally:
        globalLogPublisher.removeObserver(events.append)
    try:
        warnings = [
            formatEvent(event)
            for event in events
            if event.get("log_level") == LogLevel.warn
        ]
        assert any("authority is OPEN" in text for text in warnings)
        device = await logged_in_device(service, "490154203237518")
        device.send(bytes.fromhex(VALID_AVL[0]["hex"]))
        assert len(await device.wait_for(4)) == 4
    finally:
        await service.stopService()
