"""One timer for the whole fleet instead of one per device.

10,000 LoopingCalls would fire in bursts and keep 10,000 entries in the
reactor's timer heap.  The ticker spreads devices over `period / interval`
buckets, round-robin as they join, and every `interval` seconds ticks the
devices of one bucket: each device still ticks once a period, and the load
is even whatever the connect ramp.
"""

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

log = Logger()

INTERVAL = 0.01


class Ticker:
    def __init__(self, clock, period, interval=INTERVAL):
        interval = min(interval, period)
        count = max(1, round(period / interval))
        self.interval = period / count
        self._buckets = [{} for _ in range(count)]
        self._bucket_of = {}
        self._next_bucket = 0
        self._position = 0
        self._loop = LoopingCall.withCount(self._advance)
        self._loop.clock = clock

    def start(self):
        self._loop.start(self.interval, now=False)

    def stop(self):
        if self._loop.running:
            self._loop.stop()

    def add(self, device):
        bucket = self._next_bucket
        self._next_bucket = (bucket + 1) % len(self._buckets)
        self._buckets[bucket][device] = None
        self._bucket_of[device] = bucket

    def remove(self, device):
        bucket = self._bucket_of.pop(device, None)
        if bucket is not None:
            del self._buckets[bucket][device]

    def _advance(self, count):
        # After a stall, tick each bucket at most once rather than catching up.
        for _ in range(min(count, len(self._buckets))):
            self._position = (self._position + 1) % len(self._buckets)
            for device in list(self._buckets[self._position]):
                try:
                    device.tick()
                except Exception:
                    # A LoopingCall whose function raises stops for good.
                    log.failure("device {imei} failed to tick", imei=device.imei)
