"""A whole server instance on loopback, and a raw TCP client to poke it with.

The server is the real service tree (`twistd teltonika` minus twistd) on the
test session's Redis; the client is deliberately dumb, so a test can send any
bytes at all and wait, without sleeping, for what comes back.
"""

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint

from teltonika.options import Options
from teltonika.service import TeltonikaService

WAIT = 10.0


def launch_server(redis_url, *extra, instance="test-1"):
    """A started service tree, which may still be waiting for Redis."""
    options = Options()
    options.parseOptions(
        [
            "--redis",
            redis_url,
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--health",
            "tcp:0:interface=127.0.0.1",
            "--instance-id",
            instance,
            "--redis-timeout",
            "1",
            *extra,
        ]
    )
    service = TeltonikaService(options, reactor)
    service.startService()
    return service


async def start_server(redis_url, *extra, instance="test-1"):
    """A service tree that accepts devices."""
    service = launch_server(redis_url, *extra, instance=instance)
    await service.accepting.addTimeout(WAIT, reactor)
    return service


def device_port(service):
    return service.device_ports[0].getHost().port


class RawDevice(protocol.Protocol):
    """Collects what the server sends; Deferreds fire when enough has come."""

    def __init__(self):
        self.received = b""
        self.closed = defer.Deferred()
        self._waiting = []

    def dataReceived(self, data):
        self.received += data
        for count, d in list(self._waiting):
            if len(self.received) >= count:
                self._waiting.remove((count, d))
                d.callback(self.received)

    def connectionLost(self, reason):
        for _, d in self._waiting:
            d.errback(ConnectionError("closed after %r" % (self.received,)))
        self._waiting = []
        self.closed.callback(self.received)

    def send(self, data):
        self.transport.write(data)

    def wait_for(self, count):
        """Fire once C{count} bytes in all have been received."""
        if len(self.received) >= count:
            return defer.succeed(self.received)
        d = defer.Deferred()
        self._waiting.append((count, d))
        return d.addTimeout(WAIT, reactor)

    def wait_closed(self):
        return self.closed.addTimeout(WAIT, reactor)


async def connect(service):
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", device_port(service))
    return await endpoint.connect(protocol.Factory.forProtocol(RawDevice))
