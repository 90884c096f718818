"""Redis connections from a URL, with every command bounded in time.

The server must keep running, refuse logins and withhold ACKs while Redis is
down, so no caller may wait on Redis forever.  txredisapi's own
C{replyTimeout} only starts once a command has been written to a live
connection: a command issued while the pool is reconnecting waits for a
connection with no limit at all.  L{BoundedConnection} closes that gap.

Connections are lazy and reconnect on their own: the service starts whether
or not Redis is up, and recovers by itself when Redis comes back.  Replies are
bytes (C{charset=None, convertNumbers=False}), since IMEIs must stay strings
and payloads may be binary.
"""

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import txredisapi
from twisted.internet import defer, ssl
from twisted.python.failure import Failure

DEFAULT_REPLY_TIMEOUT = 5.0
DEFAULT_POOL_SIZE = 4
DEFAULT_PORT = 6379

# How much longer than the reply timeout a command may wait in total.  On a
# live connection the pool's replyTimeout fires first, and it also drops the
# stuck connection so that it gets re-established; the deadline only decides
# for commands that are still waiting for a connection.
_WAIT_GRACE = 1.0


@dataclass(frozen=True)
class RedisAddress:
    """Where a Redis URL points, and how to log in there."""

    host: str | None = None
    port: int = DEFAULT_PORT
    path: str | None = None
    db: int | None = None
    username: str | None = None
    password: str | None = None
    tls: bool = False


def parse_url(url):
    """
    Read C{redis://[user:password@]host[:port][/db]}, C{rediss://...} (TLS)
    or C{unix:///path/to/socket[?db=N]}.  Raise ValueError on anything else,
    so a typo in an option stops the service at start with a plain message.
    """
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return _parse_unix(url, parts)
    if parts.scheme in ("redis", "rediss"):
        return _parse_tcp(url, parts)
    raise ValueError(
        "Redis URL %r: the scheme must be redis://, rediss:// or unix://" % (url,)
    )


def _parse_unix(url, parts):
    if parts.netloc or not parts.path:
        raise ValueError("Redis URL %r: expected unix:///path/to/socket" % (url,))
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = set(query) - {"db"}
    if unknown:
        raise ValueError(
            "Redis URL %r: unknown parameter %s" % (url, ", ".join(sorted(unknown)))
        )
    db = _parse_db(url, query["db"][-1]) if "db" in query else None
    return RedisAddress(path=unquote(parts.path), db=db)


def _parse_tcp(url, parts):
    if parts.query or parts.fragment:
        raise ValueError("Redis URL %r: parameters are not supported here" % (url,))
    try:
        port = parts.port
    except ValueError:
        raise ValueError(
            "Redis URL %r: the port is not a number 0-65535" % (url,)
        ) from None
    if not parts.hostname:
        raise ValueError("Redis URL %r: the host name is missing" % (url,))
    db_text = parts.path.lstrip("/")
    if "/" in db_text:
        raise ValueError(
            "Redis URL %r: the path can only be a database number" % (url,)
        )
    return RedisAddress(
        host=parts.hostname,
        port=port or DEFAULT_PORT,
        db=_parse_db(url, db_text) if db_text else None,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        tls=parts.scheme == "rediss",
    )


def _parse_db(url, text):
    if not text.isdigit():
        raise ValueError(
            "Redis URL %r: the database must be a number, not %r" % (url, text)
        )
    return int(text)


def connection_pool(
    url, poolsize=DEFAULT_POOL_SIZE, reply_timeout=DEFAULT_REPLY_TIMEOUT, clock=None
):
    """
    A pool of connections to the Redis at C{url}, for ordinary commands from
    many devices at once.  Raise ValueError for a bad URL.
    """
    return _connect(parse_url(url), poolsize, reply_timeout, clock)


def _connect(address, poolsize, reply_timeout, clock):
    common = dict(
        dbid=address.db,
        poolsize=poolsize,
        reconnect=True,
        charset=None,
        convertNumbers=False,
        password=address.password,
        username=address.username,
        connectTimeout=reply_timeout,
        replyTimeout=reply_timeout,
    )
    if address.path is not None:
        handler = txredisapi.lazyUnixConnectionPool(address.path, **common)
    else:
        tls = ssl.optionsForClientTLS(address.host) if address.tls else False
        handler = txredisapi.lazyConnectionPool(
            address.host, address.port, ssl_context_factory=tls, **common
        )
    if clock is None:
        from twisted.internet import reactor as clock
    return BoundedConnection(handler, reply_timeout + _WAIT_GRACE, clock)


class BoundedConnection:
    """
    A txredisapi connection whose every command fails with
    L{txredisapi.TimeoutError} (a L{txredisapi.ConnectionError}) when Redis
    has not answered within C{deadline} seconds, connected or not.
    """

    def __init__(self, handler, deadline, clock):
        self._handler = handler
        self._deadline = deadline
        self._clock = clock

    def __getattr__(self, name):
        command = getattr(self._handler, name)
        deadline = self._deadline
        clock = self._clock

        def bounded(*args, **kwargs):
            return command(*args, **kwargs).addTimeout(
                deadline, clock, onTimeoutCancel=_timedOut
            )

        bounded.__name__ = name
        return bounded

    def disconnect(self):
        """Close every connection and stop reconnecting (no deadline)."""
        return self._handler.disconnect()

    def __repr__(self):
        return "<BoundedConnection %r>" % (self._handler,)


def _timedOut(result, timeout):
    if isinstance(result, Failure):
        result.trap(defer.CancelledError)
        raise txredisapi.TimeoutError(
            "Redis did not answer within %g seconds" % (timeout,)
        )
    return result


def ping(conn):
    """
    Fire with None once Redis answers PING, errback otherwise: the readiness
    probe's view of Redis.
    """

    def check(reply):
        if reply != b"PONG":
            raise txredisapi.ResponseError("unexpected PING reply %r" % (reply,))

    return conn.ping().addCallback(check)
