"""What a tracker measures: a vehicle driving a random walk, as AVL records.

The records must look like a real car's so that a server's checks (speed,
heading, odometer monotony, IO widths) see plausible data: speed changes a few
km/h per record, the heading turns gradually and is the direction the position
actually moves in, the odometer only grows, the engine is off now and then.
"""

import math

from teltonika.codec import AVLRecord

# IO element ids (Teltonika FMB AVL ids) and the byte width a real device uses.
IGNITION = 239
MOVEMENT = 240
GSM_SIGNAL = 21
EXTERNAL_VOLTAGE = 66
BATTERY_VOLTAGE = 67
TOTAL_ODOMETER = 16
BEACON = 385  # a Codec 8E variable-length (NX) element
IO_WIDTHS = {
    IGNITION: 1,
    MOVEMENT: 1,
    GSM_SIGNAL: 1,
    EXTERNAL_VOLTAGE: 2,
    BATTERY_VOLTAGE: 2,
    TOTAL_ODOMETER: 4,
}

# Codec 16 generation types.
ON_CHANGE = 5
PERIODICAL = 7

METRES_PER_DEGREE = 111_320
MAX_SPEED = 130  # km/h
NX_CHANCE = 0.05
IGNITION_ON_CHANCE = 0.05
IGNITION_OFF_CHANCE = 0.01


class Vehicle:
    """One car's state.  Small on purpose: a process holds 10,000 of them."""

    __slots__ = (
        "altitude",
        "codec",
        "heading",
        "ignition",
        "last_timestamp",
        "lat",
        "lon",
        "odometer",
        "rng",
        "satellites",
        "speed",
    )

    def __init__(self, rng, codec):
        self.rng = rng
        self.codec = codec
        # Somewhere in Europe, on land or near enough.
        self.lat = rng.uniform(40.0, 55.0)
        self.lon = rng.uniform(-5.0, 25.0)
        self.altitude = rng.uniform(0, 800)
        self.heading = rng.uniform(0, 360)
        self.speed = 0.0
        self.odometer = rng.uniform(0, 300_000_000)  # metres
        self.ignition = rng.random() < 0.8
        self.satellites = rng.randint(6, 14)
        self.last_timestamp = 0

    def record(self, timestamp, seconds):
        """The record taken at `timestamp` (ms), `seconds` after the last one.

        Timestamps strictly increase even if the caller's clock does not.
        """
        rng = self.rng
        timestamp = max(int(timestamp), self.last_timestamp + 1)
        self.last_timestamp = timestamp
        event = 0
        if rng.random() < (
            IGNITION_OFF_CHANCE if self.ignition else IGNITION_ON_CHANCE
        ):
            self.ignition = not self.ignition
            event = IGNITION
        self._drive(seconds)
        io = {
            IGNITION: int(self.ignition),
            MOVEMENT: int(self.speed >= 1),
            GSM_SIGNAL: rng.randint(2, 5),
            EXTERNAL_VOLTAGE: (
                rng.randint(13600, 14200)
                if self.ignition
                else rng.randint(12200, 12600)
            ),
            BATTERY_VOLTAGE: rng.randint(3900, 4150),
            TOTAL_ODOMETER: int(self.odometer),
        }
        nx = {}
        if self.codec == "8E" and rng.random() < NX_CHANCE:
            nx = {BEACON: rng.randbytes(rng.randint(8, 40))}
        generation = None
        if self.codec == "16":
            generation = ON_CHANGE if event else PERIODICAL
        return AVLRecord(
            timestamp=timestamp,
            priority=1 if event else 0,
            lon=round(self.lon * 1e7),
            lat=round(self.lat * 1e7),
            altitude=round(self.altitude),
            angle=round(self.heading) % 360,
            satellites=self.satellites,
            speed=round(self.speed),
            event_id=event,
            io=io,
            nx=nx,
            generation=generation,
        )

    def _drive(self, seconds):
        rng = self.rng
        if self.ignition:
            self.speed = min(MAX_SPEED, max(0.0, self.speed + rng.gauss(2, 6)))
            self.heading = (self.heading + rng.gauss(0, 8)) % 360
        else:
            self.speed = 0.0
        metres = self.speed / 3.6 * seconds
        radians = math.radians(self.heading)
        self.lat += metres * math.cos(radians) / METRES_PER_DEGREE
        self.lat = min(89.0, max(-89.0, self.lat))
        self.lon += (
            metres
            * math.sin(radians)
            / (METRES_PER_DEGREE * math.cos(math.radians(self.lat)))
        )
        self.lon = (self.lon + 180) % 360 - 180
        self.odometer += metres
        self.altitude = min(3000.0, max(-50.0, self.altitude + rng.gauss(0, 1)))
        if rng.random() < 0.1:
            self.satellites = min(18, max(4, self.satellites + rng.choice((-1, 1))))
