import pytest
import pytest_twisted
import txredisapi
from redis_server import RedisServer
from zope.interface.verify import verifyObject

from teltonika import keys
from teltonika.authority import AllowlistAuthority, OpenAuthority
from teltonika.interfaces import IDeviceAuthority
from teltonika.redisconn import connection_pool

ALLOWED = "356307042441013"
OTHER = "356307042441014"
MALFORMED = ["", "35630704244101", "3563070424410130", "35630704244101x", "٣" * 15]


@pytest.fixture
def conn(redis_server):
    conn = connection_pool(redis_server.url, reply_timeout=1.0)
    yield conn
    pytest_twisted.blockon(conn.disconnect())


class CountingConnection:
    """Counts round trips, to show which questions need none."""

    def __init__(self, conn):
        self.conn = conn
        self.commands = []

    def execute_command(self, *args):
        self.commands.append(args[0])
        return self.conn.execute_command(*args)


def test_provides_interface():
    assert verifyObject(IDeviceAuthority, AllowlistAuthority(None))
    assert verifyObject(IDeviceAuthority, OpenAuthority())


@pytest_twisted.inlineCallbacks
def test_allowlist_membership(conn, redis_db):
    redis_db.sadd(keys.ALLOWED_DEVICES, ALLOWED)
    authority = AllowlistAuthority(conn)
    assert (yield authority.is_allowed(ALLOWED)) is True
    assert (yield authority.is_allowed(OTHER)) is False


@pytest_twisted.inlineCallbacks
def test_allowlist_refuses_malformed_without_asking(conn, redis_db):
    counting = CountingConnection(conn)
    authority = AllowlistAuthority(counting)
    for imei in MALFORMED:
        redis_db.sadd(keys.ALLOWED_DEVICES, imei or "empty")
        assert (yield authority.is_allowed(imei)) is False
    assert counting.commands == []


@pytest_twisted.inlineCallbacks
def test_still_allowed_in_one_round_trip(conn, redis_db):
    redis_db.sadd(keys.ALLOWED_DEVICES, ALLOWED, "356307042441015")
    counting = CountingConnection(conn)
    authority = AllowlistAuthority(counting)
    asked = [ALLOWED, OTHER, "356307042441015"]
    assert (yield authority.still_allowed(asked)) == {ALLOWED, "356307042441015"}
    assert (yield authority.still_allowed(iter([OTHER]))) == set()
    assert counting.commands == ["SMISMEMBER", "SMISMEMBER"]


@pytest_twisted.inlineCallbacks
def test_still_allowed_of_nothing_asks_nothing(conn, redis_db):
    counting = CountingConnection(conn)
    assert (yield AllowlistAuthority(counting).still_allowed([])) == set()
    assert counting.commands == []


@pytest_twisted.inlineCallbacks
def test_revocation_seen_at_next_question(conn, redis_db):
    redis_db.sadd(keys.ALLOWED_DEVICES, ALLOWED)
    authority = AllowlistAuthority(conn)
    assert (yield authority.still_allowed([ALLOWED])) == {ALLOWED}
    redis_db.srem(keys.ALLOWED_DEVICES, ALLOWED)
    assert (yield authority.still_allowed([ALLOWED])) == set()
    assert (yield authority.is_allowed(ALLOWED)) is False


@pytest_twisted.inlineCallbacks
def test_redis_down_errbacks_instead_of_hanging(tmp_path):
    server = RedisServer(str(tmp_path)).start()
    server.client().sadd(keys.ALLOWED_DEVICES, ALLOWED)
    conn = connection_pool(server.url, reply_timeout=0.3)
    authority = AllowlistAuthority(conn)
    try:
        assert (yield authority.is_allowed(ALLOWED)) is True
        server.stop()
        with pytest.raises(txredisapi.ConnectionError):
            yield authority.is_allowed(ALLOWED)
        with pytest.raises(txredisapi.ConnectionError):
            yield authority.still_allowed([ALLOWED])
    finally:
        yield conn.disconnect()


@pytest_twisted.inlineCallbacks
def test_open_authority_allows_any_well_formed_imei():
    # Its warning is the service's, at start: see tests/test_server.py.
    authority = OpenAuthority()
    assert (yield authority.is_allowed(OTHER)) is True
    for imei in MALFORMED:
        assert (yield authority.is_allowed(imei)) is False
    assert (yield authority.still_allowed([ALLOWED, OTHER])) == {ALLOWED, OTHER}
    assert (yield authority.still_allowed([])) == set()
