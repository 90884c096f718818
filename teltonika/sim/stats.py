"""Fleet-wide counters and ACK latency, cheap enough to update per frame.

Latencies go into a histogram with 2%-wide buckets rather than a list, so a
long 10,000-device run costs a few hundred integers, and p50/p99 are exact to
within 2%.
"""

import math

BUCKET_GROWTH = 1.02
_LOG_GROWTH = math.log(BUCKET_GROWTH)
SMALLEST = 1e-5  # seconds; anything quicker lands in the first bucket


class LatencyHistogram:
    __slots__ = ("buckets", "count")

    def __init__(self):
        self.buckets = {}
        self.count = 0

    def add(self, seconds):
        bucket = max(
            0, math.ceil(math.log(max(seconds, SMALLEST) / SMALLEST) / _LOG_GROWTH)
        )
        self.buckets[bucket] = self.buckets.get(bucket, 0) + 1
        self.count += 1

    def percentile(self, fraction):
        """Upper bound (seconds) of the bucket holding that fraction, or None."""
        if not self.count:
            return None
        rank = max(1, math.ceil(fraction * self.count))
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return SMALLEST * BUCKET_GROWTH**bucket
        raise AssertionError("unreachable: ranks never exceed the count")


COUNTERS = (
    "devices_started",
    "logins",
    "logins_refused",
    "disconnects",
    "connect_failures",
    "records",
    "records_acked",
    "frames_sent",
    "frames_acked",
    "frames_resent",
    "wrong_acks",
    "late_acks",
    "commands_received",
    "commands_answered",
    "nacks_sent",
    "bad_frames",
    "devices_done",
)


class Stats:
    """Counters shared by every device of a fleet."""

    __slots__ = (*COUNTERS, "ack_latency")

    def __init__(self):
        for name in COUNTERS:
            setattr(self, name, 0)
        self.ack_latency = LatencyHistogram()

    def as_dict(self):
        summary = {name: getattr(self, name) for name in COUNTERS}
        summary["ack_latency_p50"] = self.ack_latency.percentile(0.50)
        summary["ack_latency_p99"] = self.ack_latency.percentile(0.99)
        return summary

    def format(self, elapsed=None):
        """One human-readable line."""
        parts = []
        if elapsed is not None:
            parts.append(f"t={elapsed:.1f}s")
        parts += [
            f"devices={self.devices_started}",
            f"logins={self.logins}",
            f"refused={self.logins_refused}",
            f"disconnects={self.disconnects}",
            f"frames sent={self.frames_sent}",
            f"acked={self.frames_acked}",
            f"resent={self.frames_resent}",
            f"records={self.records}",
            f"records acked={self.records_acked}",
            f"commands={self.commands_received}",
            f"answered={self.commands_answered}",
            f"nacks={self.nacks_sent}",
            f"ack p50={_milliseconds(self.ack_latency.percentile(0.50))}",
            f"p99={_milliseconds(self.ack_latency.percentile(0.99))}",
        ]
        if self.wrong_acks or self.late_acks or self.bad_frames:
            parts.append(
                f"wrong acks={self.wrong_acks} late acks={self.late_acks}"
                f" bad frames={self.bad_frames}"
            )
        return " ".join(parts)


def _milliseconds(seconds):
    return "-" if seconds is None else f"{seconds * 1000:.1f}ms"
