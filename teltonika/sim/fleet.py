"""Many devices in one process: power them on at a ramp, tick them, stop them.

    fleet = Fleet(reactor, "127.0.0.1", 5027, imeis, Config(frames=20, history=True))
    stats = await fleet.start()   # fires once every device has stopped
    fleet.device(imei).acked_records

start() returns `fleet.done`, a Deferred that fires with the Stats once
every device has stopped: with Config.frames, when each has had all its
records ACKed; otherwise after stop().
"""

import random

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from teltonika.sim.config import Config
from teltonika.sim.device import Device, DeviceContext
from teltonika.sim.protocol import DeviceFactory
from teltonika.sim.stats import Stats
from teltonika.sim.ticker import Ticker
from teltonika.sim.vehicle import Vehicle

RAMP_INTERVAL = 0.05
CONNECT_TIMEOUT = 30


class Fleet:
    def __init__(self, reactor, host, port, imeis, config=None):
        self.reactor = reactor
        self.host = host
        self.port = port
        self.config = config or Config()
        self.stats = Stats()
        self.done = Deferred()
        rng = random.Random(self.config.seed)
        context = DeviceContext(
            reactor, self.config, self.stats, rng, self._connect, self._device_stopped
        )
        self.devices = []
        self._by_imei = {}
        for index, imei in enumerate(imeis):
            if imei in self._by_imei:
                raise ValueError(f"IMEI {imei} given twice")
            codec = self.config.codec_of(index)
            device = Device(imei, codec, Vehicle(rng, codec), context)
            self.devices.append(device)
            self._by_imei[imei] = device
        self._running = len(self.devices)
        self._powered = 0
        self._ramp_target = 0.0
        self._ticker = Ticker(reactor, self.config.period)
        self._ramp_interval = max(RAMP_INTERVAL, 1 / self.config.ramp)
        self._ramp = LoopingCall.withCount(self._power_on_some)
        self._ramp.clock = reactor
        self._stopping = False

    def device(self, imei):
        return self._by_imei[imei]

    def start(self):
        """Power devices on at Config.ramp per second; returns `done`."""
        if not self.devices:
            self.done.callback(self.stats)
            return self.done
        self._ticker.start()
        self._ramp.start(self._ramp_interval, now=True)
        return self.done

    def stop(self):
        """Stop every device now (unACKed records stay in `pending`)."""
        if self._stopping:
            return
        self._stopping = True
        if self._ramp.running:
            self._ramp.stop()
        for device in self.devices:
            device.stop()

    def _power_on_some(self, count):
        self._ramp_target += self.config.ramp * self._ramp_interval * count
        while self._powered < min(self._ramp_target, len(self.devices)):
            device = self.devices[self._powered]
            self._powered += 1
            self._ticker.add(device)
            device.power_on()
        if self._powered == len(self.devices):
            self._ramp.stop()

    def _connect(self, device):
        factory = DeviceFactory(device)
        return self.reactor.connectTCP(
            self.host, self.port, factory, timeout=CONNECT_TIMEOUT
        )

    def _device_stopped(self, device):
        self._ticker.remove(device)
        self._running -= 1
        if self._running == 0:
            self._ticker.stop()
            if self._ramp.running:
                self._ramp.stop()
            self.done.callback(self.stats)
