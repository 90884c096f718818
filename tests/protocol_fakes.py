"""Stand-ins for the factory's collaborators, for reactor-free protocol tests.

Each one records what it was asked and hands back a Deferred the test fires
when it chooses, so a test can hold a frame "in Redis" for as long as it
needs to look at what the connection does meanwhile.
"""

from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransportWithDisconnection
from zope.interface import implementer

from teltonika import codec
from teltonika.factory import TeltonikaFactory
from teltonika.interfaces import (
    IConnectionRegistry,
    IDeviceAuthority,
    IMessageSink,
    ITelemetrySink,
)
from teltonika.metrics import Metrics

IMEI = "356307042441013"
OTHER_IMEI = "352093081452251"


@implementer(IDeviceAuthority)
class FakeAuthority:
    def __init__(self, allowed=(IMEI, OTHER_IMEI)):
        self.allowed = set(allowed)
        self.pending = None

    def is_allowed(self, imei):
        if self.pending is not None:
            return self.pending
        return defer.succeed(imei in self.allowed)

    def still_allowed(self, imeis):
        return defer.succeed(set(imeis) & self.allowed)


@implementer(ITelemetrySink)
class FakeTelemetry:
    """Stores nothing until the test calls finish()."""

    def __init__(self):
        self.calls = []

    def store(self, imei, packet, frame, received_at):
        d = defer.Deferred()
        self.calls.append((imei, packet, frame, received_at, d))
        return d

    def finish(self, result=True):
        self.calls.pop(0)[-1].callback(result)

    def fail(self, error):
        self.calls.pop(0)[-1].errback(error)


@implementer(IMessageSink)
class FakeMessages:
    def __init__(self):
        self.stored = []

    def store(self, imei, message, received_at):
        self.stored.append((imei, message))
        return defer.succeed(None)


@implementer(IConnectionRegistry)
class FakeRegistry:
    def __init__(self):
        self.events = []

    def register(self, imei):
        self.events.append(("register", imei))
        return defer.succeed(None)

    def unregister(self, imei):
        self.events.append(("unregister", imei))
        return defer.succeed(None)


def make_factory(**overrides):
    settings = dict(
        authority=FakeAuthority(),
        telemetry=FakeTelemetry(),
        messages=FakeMessages(),
        registry=FakeRegistry(),
        metrics=Metrics(),
        clock=task.Clock(),
        login_timeout=30.0,
        idle_timeout=600.0,
    )
    settings.update(overrides)
    return TeltonikaFactory(**settings)


def connect(factory):
    """A protocol on a StringTransport, as if a device had just connected."""
    protocol = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 40000))
    transport = StringTransportWithDisconnection(
        peerAddress=IPv4Address("TCP", "192.0.2.7", 40000)
    )
    transport.protocol = protocol
    protocol.makeConnection(transport)
    return protocol, transport


def logged_in(factory, imei=IMEI):
    protocol, transport = connect(factory)
    protocol.dataReceived(codec.encode_login(imei))
    assert transport.value() == b"\x01"
    transport.clear()
    return protocol, transport


def record(n=0, **fields):
    values = dict(
        timestamp=1_700_000_000_000 + n * 1000,
        priority=0,
        lon=252560283,
        lat=546674250,
        altitude=172,
        angle=248,
        satellites=11,
        speed=n,
        event_id=0,
        io={239: 1, 66: 12000 + n},
    )
    values.update(fields)
    return codec.AVLRecord(**values)


def sample_metric(factory, name, **labels):
    value = factory.metrics.registry.get_sample_value(name, labels or None)
    return value or 0.0
