"""Records move like a car: road speeds, heading along the motion, growing
odometer, increasing timestamps, realistic IO widths."""

import itertools
import math
import random

import pytest

from teltonika.codec import decode_frame, encode_avl
from teltonika.sim.vehicle import (
    BEACON,
    IGNITION,
    IO_WIDTHS,
    TOTAL_ODOMETER,
    Vehicle,
)


def drive(codec="8E", count=2000, seconds=10, seed=5):
    vehicle = Vehicle(random.Random(seed), codec)
    start = 1_796_300_000_000
    return [vehicle.record(start + i * seconds * 1000, seconds) for i in range(count)]


def test_timestamps_strictly_increase_even_if_the_clock_does_not():
    vehicle = Vehicle(random.Random(1), "8")
    stamps = [vehicle.record(1_000_000, 1).timestamp for _ in range(5)]
    assert stamps == [1_000_000, 1_000_001, 1_000_002, 1_000_003, 1_000_004]


def test_speeds_are_road_speeds_and_zero_with_the_engine_off():
    records = drive()
    assert max(r.speed for r in records) <= 130
    assert any(r.speed > 50 for r in records)
    assert all(r.speed == 0 for r in records if r.io[IGNITION] == 0)
    assert {r.io[IGNITION] for r in records} == {0, 1}


def test_ignition_changes_are_events():
    records = drive()
    for before, after in itertools.pairwise(records):
        changed = before.io[IGNITION] != after.io[IGNITION]
        assert (after.event_id == IGNITION) == changed


def test_odometer_only_grows_by_the_distance_driven():
    records = drive()
    odometers = [r.io[TOTAL_ODOMETER] for r in records]
    assert odometers == sorted(odometers)
    assert odometers[-1] > odometers[0]
    assert odometers[-1] < 2**32


def test_heading_is_the_direction_of_motion():
    records = drive(seconds=1)
    checked = 0
    for before, after in itertools.pairwise(records):
        if after.speed < 20:
            continue
        north = (after.lat - before.lat) / 1e7
        east = (after.lon - before.lon) / 1e7 * math.cos(math.radians(after.lat / 1e7))
        bearing = math.degrees(math.atan2(east, north)) % 360
        difference = abs((bearing - after.angle + 180) % 360 - 180)
        assert difference < 3
        checked += 1
    assert checked > 100


def test_satellites_and_voltages_are_plausible():
    for record in drive(count=500):
        assert 4 <= record.satellites <= 18
        assert 3900 <= record.io[67] <= 4150
        assert 12000 <= record.io[66] <= 14500


def test_nx_elements_only_in_8e_and_only_sometimes():
    with_nx = [r for r in drive("8E") if r.nx]
    assert 0 < len(with_nx) < 300
    assert all(set(r.nx) == {BEACON} for r in with_nx)
    assert not any(r.nx for r in drive("8"))


def test_generation_only_in_16():
    assert {r.generation for r in drive("16")} == {5, 7}
    assert {r.generation for r in drive("8")} == {None}


@pytest.mark.parametrize("codec", ["8", "8E", "16"])
def test_records_round_trip_with_the_device_widths(codec):
    records = drive(codec, count=20)
    frame = encode_avl(codec, records, IO_WIDTHS)
    assert decode_frame(frame).records == tuple(records)


def test_io_elements_sit_in_their_device_width_groups():
    (record,) = drive("8", count=1)
    frame = encode_avl("8", [record], IO_WIDTHS)
    # Codec 8: preamble, length, codec id, count (10 bytes), 24 bytes of GPS
    # data, event id, total; then per group of width 1, 2, 4, 8: count, ids.
    offset = 10 + 24 + 2
    groups = {}
    for width in (1, 2, 4, 8):
        count = frame[offset]
        offset += 1
        groups[width] = [frame[offset + i * (1 + width)] for i in range(count)]
        offset += count * (1 + width)
    assert groups == {1: [239, 240, 21], 2: [66, 67], 4: [16], 8: []}
