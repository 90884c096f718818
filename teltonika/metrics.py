"""The numbers an operator watches, as Prometheus collectors.

Each service tree gets its own registry rather than prometheus_client's
global one, so two instances in one test process keep separate counts.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.connections = Gauge(
            "teltonika_connections", "Open device sockets", registry=self.registry
        )
        self.logins = Counter(
            "teltonika_logins",
            "Logins answered, by outcome",
            ["result"],
            registry=self.registry,
        )
        self.frames = Counter(
            "teltonika_frames",
            "Data frames received, by codec",
            ["codec"],
            registry=self.registry,
        )
        self.records = Counter(
            "teltonika_records", "AVL records stored", registry=self.registry
        )
        self.duplicates = Counter(
            "teltonika_duplicate_frames",
            "Frames ACKed without storing: identical to the last one stored",
            registry=self.registry,
        )
        self.crc_errors = Counter(
            "teltonika_crc_errors",
            "Frames whose CRC did not match",
            registry=self.registry,
        )
        self.bad_frames = Counter(
            "teltonika_bad_frames",
            "Input that closed a connection, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.redis_errors = Counter(
            "teltonika_redis_errors",
            "Redis operations that failed, by operation",
            ["operation"],
            registry=self.registry,
        )
        self.ack_latency = Histogram(
            "teltonika_ack_latency_seconds",
            "From a frame's last byte to its ACK",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
