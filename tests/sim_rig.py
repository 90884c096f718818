"""A device wired to a fake reactor and a string transport: no network, no
real time.  Shared by the simulator's unit tests."""

import random

from twisted.internet.testing import (
    MemoryReactorClock,
    StringTransportWithDisconnection,
)

from teltonika.codec import decode_frame, next_frame
from teltonika.sim.config import Config
from teltonika.sim.device import Device, DeviceContext
from teltonika.sim.protocol import DeviceFactory
from teltonika.sim.stats import Stats
from teltonika.sim.vehicle import Vehicle

IMEI = "352093081452251"
OTHER_IMEI = "356307042441013"


class Rig:
    def __init__(self, imei=IMEI, **settings):
        self.reactor = MemoryReactorClock()
        self.stats = Stats()
        self.stopped = []
        self.config = Config(**{"history": True, "seed": 7, **settings})
        rng = random.Random(7)
        self.context = DeviceContext(
            self.reactor,
            self.config,
            self.stats,
            rng,
            self._connect,
            self.stopped.append,
        )
        codec = self.config.codec_of(0)
        self.device = Device(imei, codec, Vehicle(rng, codec), self.context)
        self.transport = None
        self.protocol = None

    def _connect(self, device):
        return self.reactor.connectTCP("sim.test", 5027, DeviceFactory(device))

    @property
    def attempts(self):
        """How many connections the device has tried to open."""
        return len(self.reactor.tcpClients)

    def accept(self):
        """Complete the latest connection attempt."""
        factory = self.reactor.tcpClients[-1][2]
        self.protocol = factory.buildProtocol(None)
        self.transport = StringTransportWithDisconnection()
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)

    def online(self):
        """Power on, connect, get the login accepted; returns the login bytes."""
        self.device.power_on()
        self.accept()
        login = self.sent()
        self.receive(b"\x01")
        return login

    def receive(self, data, chunk=None):
        """Server bytes, optionally `chunk` bytes at a time."""
        chunk = chunk or len(data)
        for start in range(0, len(data), chunk):
            self.protocol.dataReceived(data[start : start + chunk])

    def sent(self):
        data = self.transport.value()
        self.transport.clear()
        return data

    def sent_frames(self):
        """Everything written since the last call, as decoded frames."""
        data = bytearray(self.sent())
        frames = []
        while data:
            _, size = next_frame(data)
            frames.append(decode_frame(bytes(data[:size])))
            del data[:size]
        return frames
