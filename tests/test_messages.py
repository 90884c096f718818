import pytest
import pytest_twisted
import txredisapi
from zope.interface.verify import verifyObject

from teltonika import keys
from teltonika.codec import Message
from teltonika.interfaces import IMessageSink
from teltonika.messages import RedisMessageSink
from teltonika.redisconn import connection_pool

IMEI = "356307042441013"


@pytest.fixture
def conn(redis_server):
    conn = connection_pool(redis_server.url, reply_timeout=1.0)
    yield conn
    pytest_twisted.blockon(conn.disconnect())


def test_provides_interface():
    assert verifyObject(IMessageSink, RedisMessageSink(None, "i1"))


@pytest_twisted.inlineCallbacks
def test_codec13_message_with_timestamp(conn, redis_db):
    message = Message("13", 0x05, b"Hello \xe2\x82\xac", timestamp=1560161086000)
    yield RedisMessageSink(conn, "ingest-a").store(IMEI, message, 1560161090123)
    [(_id, entry)] = redis_db.xrange(keys.DEVICE_MESSAGES)
    assert entry == {
        "imei": IMEI,
        "codec": "13",
        "type": "5",
        "ts": "1560161086000",
        "text": "Hello \u20ac",
        "hex": "48656c6c6f20e282ac",
        "instance": "ingest-a",
        "received_at": "1560161090123",
    }


@pytest_twisted.inlineCallbacks
def test_unsolicited_answer_has_no_ts_and_replaced_bytes(conn, redis_db):
    sink = RedisMessageSink(conn, "i1")
    yield sink.store(IMEI, Message("12", 0x06, b"DOUT1:\xff\x00\r\n"), 7)
    yield sink.store(IMEI, Message("14", 0x11, b"", imei=IMEI), 8)
    entries = [entry for _id, entry in redis_db.xrange(keys.DEVICE_MESSAGES)]
    assert entries == [
        {
            "imei": IMEI, "codec": "12", "type": "6",
            "text": "DOUT1:\ufffd\x00\r\n", "hex": "444f5554313aff000d0a",
            "instance": "i1", "received_at": "7",
        },
        {
            "imei": IMEI, "codec": "14", "type": "17", "text": "", "hex": "",
            "instance": "i1", "received_at": "8",
        },
    ]  # fmt: skip


@pytest_twisted.inlineCallbacks
def test_stream_is_trimmed_approximately(conn, redis_db):
    sink = RedisMessageSink(conn, "i1", maxlen=5)
    for n in range(300):
        yield sink.store(IMEI, Message("13", 0x05, b"m%d" % n, timestamp=n), n)
    assert 5 <= redis_db.xlen(keys.DEVICE_MESSAGES) < 300


@pytest_twisted.inlineCallbacks
def test_wrong_type_key_errbacks(conn, redis_db):
    redis_db.set(keys.DEVICE_MESSAGES, "not a stream")
    with pytest.raises(txredisapi.ResponseError, match="WRONGTYPE"):
        yield RedisMessageSink(conn, "i1").store(IMEI, Message("13", 5, b"x"), 1)
