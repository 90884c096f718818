import json

import pytest
import pytest_twisted
import txredisapi
from redis_server import RedisServer
from zope.interface.verify import verifyObject

from teltonika import keys
from teltonika.codec import AVLPacket, AVLRecord
from teltonika.interfaces import ITelemetrySink
from teltonika.redisconn import connection_pool
from teltonika.telemetry import (
    FINGERPRINT_TTL,
    RedisTelemetrySink,
    degrees,
    io_json,
)

IMEI = "356307042441013"
CONTRACT_ORDER = [
    "imei", "codec", "ts", "priority", "lat", "lon", "alt", "angle", "sat",
    "speed", "event", "io", "instance", "received_at",
]  # fmt: skip


def record(**changes):
    values = dict(
        timestamp=1560161086000,
        priority=1,
        lon=254000000,
        lat=548000000,
        altitude=120,
        angle=90,
        satellites=9,
        speed=55,
        event_id=0,
        io={1: 0, 21: 3, 66: 24079},
        nx={},
        generation=None,
    )
    values.update(changes)
    return AVLRecord(**values)


@pytest.fixture
def conn(redis_server):
    conn = connection_pool(redis_server.url, reply_timeout=1.0)
    yield conn
    pytest_twisted.blockon(conn.disconnect())


def entries(redis_db, stream=keys.DEFAULT_TELEMETRY_STREAM):
    return [fields for _id, fields in redis_db.xrange(stream)]


@pytest.mark.parametrize(
    "wire, text",
    [
        (0, "0.0000000"),
        (-1003628933, "-100.3628933"),
        (1003628933, "100.3628933"),
        (-5, "-0.0000005"),
        (1800000000, "180.0000000"),
        (-900000000, "-90.0000000"),
        (254000000, "25.4000000"),
        (-2147483648, "-214.7483648"),
    ],
)
def test_degrees_are_exact(wire, text):
    assert degrees(wire) == text


def test_io_json_is_compact_with_nx_as_hex():
    assert io_json(record(io={}, nx={})) == "{}"
    assert io_json(record(io={1: 0, 240: 1})) == '{"1":0,"240":1}'
    assert (
        io_json(record(io={239: 18446744073709551615}, nx={385: b"\x0a\xff\x00"}))
        == '{"239":18446744073709551615,"385":"0aff00"}'
    )


def test_provides_interface():
    assert verifyObject(ITelemetrySink, RedisTelemetrySink(None, "i1"))


@pytest_twisted.inlineCallbacks
def test_codec8_entries_exactly_as_contract(conn, redis_db):
    sink = RedisTelemetrySink(conn, "ingest-a")
    first = record()
    second = record(
        timestamp=1560161087000,
        priority=2,
        lon=-1003628933,
        lat=-5,
        altitude=-12,
        angle=359,
        satellites=0,
        speed=0,
        event_id=240,
        io={240: 1},
    )
    written = yield sink.store(IMEI, AVLPacket("8", (first, second)), b"frame-1", 17)
    assert written is True
    stored = entries(redis_db)
    assert stored == [
        {
            "imei": IMEI, "codec": "8", "ts": "1560161086000", "priority": "1",
            "lat": "54.8000000", "lon": "25.4000000", "alt": "120", "angle": "90",
            "sat": "9", "speed": "55", "event": "0",
            "io": '{"1":0,"21":3,"66":24079}',
            "instance": "ingest-a", "received_at": "17",
        },
        {
            "imei": IMEI, "codec": "8", "ts": "1560161087000", "priority": "2",
            "lat": "-0.0000005", "lon": "-100.3628933", "alt": "-12",
            "angle": "359", "sat": "0", "speed": "0", "event": "240",
            "io": '{"240":1}', "instance": "ingest-a", "received_at": "17",
        },
    ]  # fmt: skip
    assert list(stored[0]) == CONTRACT_ORDER


@pytest_twisted.inlineCallbacks
def test_codec8e_nx_values_as_hex(conn, redis_db):
    sink = RedisTelemetrySink(conn, "i1")
    nx_record = record(io={11: 893700}, nx={385: bytes(range(250, 256)) + b"|x"})
    yield sink.store(IMEI, AVLPacket("8E", (nx_record,)), b"frame-8e", 5)
    [entry] = entries(redis_db)
    assert entry["codec"] == "8E"
    assert "gen" not in entry
    assert json.loads(entry["io"]) == {"11": 893700, "385": "fafbfcfdfeff7c78"}


@pytest_twisted.inlineCallbacks
def test_codec16_has_generation(conn, redis_db):
    sink = RedisTelemetrySink(conn, "i1")
    records = (record(generation=5, event_id=385), record(generation=0, io={}))
    yield sink.store(IMEI, AVLPacket("16", records), b"frame-16", 5)
    stored = entries(redis_db)
    assert [(e["codec"], e["event"], e["gen"], e["io"]) for e in stored] == [
        ("16", "385", "5", '{"1":0,"21":3,"66":24079}'),
        ("16", "0", "0", "{}"),
    ]
    assert list(stored[0]) == [*CONTRACT_ORDER[:11], "gen", *CONTRACT_ORDER[11:]]


@pytest_twisted.inlineCallbacks
def test_records_keep_their_order(conn, redis_db):
    sink = RedisTelemetrySink(conn, "i1")
    records = tuple(record(timestamp=1000 + n) for n in range(25))
    yield sink.store(IMEI, AVLPacket("8", records), b"frame", 5)
    assert [e["ts"] for e in entries(redis_db)] == [str(1000 + n) for n in range(25)]


@pytest_twisted.inlineCallbacks
def test_resent_frame_is_a_duplicate_even_for_a_new_sink(conn, redis_db):
    packet = AVLPacket("8", (record(),))
    assert (yield RedisTelemetrySink(conn, "a").store(IMEI, packet, b"f1", 1)) is True
    assert (yield RedisTelemetrySink(conn, "b").store(IMEI, packet, b"f1", 2)) is False
    assert [e["instance"] for e in entries(redis_db)] == ["a"]
    # another device sending the same bytes is not a duplicate
    other = "356307042441014"
    assert (yield RedisTelemetrySink(conn, "b").store(other, packet, b"f1", 3)) is True
    assert len(entries(redis_db)) == 2


@pytest_twisted.inlineCallbacks
def test_different_frame_after_duplicate_is_written(conn, redis_db):
    sink = RedisTelemetrySink(conn, "i1")
    yield sink.store(IMEI, AVLPacket("8", (record(timestamp=1),)), b"f1", 1)
    yield sink.store(IMEI, AVLPacket("8", (record(timestamp=1),)), b"f1", 1)
    written = yield sink.store(IMEI, AVLPacket("8", (record(timestamp=2),)), b"f2", 2)
    assert written is True
    # and the first frame, sent again after another one, is stored again
    again = yield sink.store(IMEI, AVLPacket("8", (record(timestamp=1),)), b"f1", 3)
    assert again is True
    assert [e["ts"] for e in entries(redis_db)] == ["1", "2", "1"]


@pytest_twisted.inlineCallbacks
def test_zero_record_frame_stores_only_its_fingerprint(conn, redis_db):
    sink = RedisTelemetrySink(conn, "i1")
    assert (yield sink.store(IMEI, AVLPacket("8", ()), b"empty", 1)) is True
    assert (yield sink.store(IMEI, AVLPacket("8", ()), b"empty", 1)) is False
    assert not redis_db.exists(keys.DEFAULT_TELEMETRY_STREAM)
    ttl = redis_db.ttl(keys.fingerprint(IMEI))
    assert FINGERPRINT_TTL - 10 < ttl <= FINGERPRINT_TTL


@pytest_twisted.inlineCallbacks
def test_configured_stream_and_approximate_maxlen(conn, redis_db):
    sink = RedisTelemetrySink(conn, "i1", stream="telemetry:test", maxlen=10)
    for n in range(60):
        records = tuple(record(timestamp=n * 10 + k) for k in range(10))
        yield sink.store(IMEI, AVLPacket("8", records), b"f%d" % n, 1)
    length = redis_db.xlen("telemetry:test")
    assert 10 <= length < 600
    assert not redis_db.exists(keys.DEFAULT_TELEMETRY_STREAM)
    assert entries(redis_db, "telemetry:test")[-1]["ts"] == "599"


@pytest_twisted.inlineCallbacks
def test_script_cache_flushed_falls_back_to_eval(conn, redis_db):
    sink = RedisTelemetrySink(conn, "i1")
    yield sink.store(IMEI, AVLPacket("8", (record(),)), b"f1", 1)
    redis_db.script_flush()
    assert (yield sink.store(IMEI, AVLPacket("8", (record(),)), b"f2", 1)) is True
    assert len(entries(redis_db)) == 2


@pytest_twisted.inlineCallbacks
def test_redis_down_errbacks_and_the_resend_is_stored_once(tmp_path):
    server = RedisServer(str(tmp_path)).start()
    conn = connection_pool(server.url, reply_timeout=0.3)
    sink = RedisTelemetrySink(conn, "i1")
    packet = AVLPacket("8", tuple(record(timestamp=n) for n in range(10)))
    try:
        server.stop()
        with pytest.raises(txredisapi.ConnectionError):
            yield sink.store(IMEI, packet, b"frame", 1)
        server.start()
        client = server.client()
        assert client.xlen(keys.DEFAULT_TELEMETRY_STREAM) == 0
        assert client.get(keys.fingerprint(IMEI)) is None
        written = None
        for _ in range(100):
            try:
                written = yield sink.store(IMEI, packet, b"frame", 2)
                break
            except txredisapi.ConnectionError:
                pass
        assert written is True
        assert client.xlen(keys.DEFAULT_TELEMETRY_STREAM) == 10
        assert (yield sink.store(IMEI, packet, b"frame", 3)) is False
        assert client.xlen(keys.DEFAULT_TELEMETRY_STREAM) == 10
    finally:
        yield conn.disconnect()
        server.stop()
