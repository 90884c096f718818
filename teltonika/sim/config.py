"""How a simulated fleet behaves: the knobs the CLI and tests turn."""

from dataclasses import dataclass

CODECS = ("8", "8E", "16")
CODEC_CHOICES = (*CODECS, "mix")
MAX_RECORDS = 255  # the frame's record count is one byte


@dataclass(frozen=True, slots=True)
class Config:
    """Every device of a fleet shares one Config.

    period: seconds between two batches of records (and frames).
    records: records per batch, and the most one frame carries.
    codec: "8", "8E", "16", or "mix" (device i uses CODECS[i % 3]).
    ack_timeout: seconds without the matching ACK before the frame is resent.
    answer_delay: seconds between receiving a command and answering it.
    backoff_initial, backoff_max: reconnect delay bounds (seconds).
    ramp: devices powered on per second.
    frames: batches each device records before it stops, once all are ACKed;
        None records until the fleet is stopped.
    history: keep, per device, every record generated and every command
        received (for tests; costs memory on long runs).
    seed: makes the records reproducible.
    """

    period: float = 10.0
    records: int = 1
    codec: str = "8E"
    ack_timeout: float = 10.0
    answer_delay: float = 0.5
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    ramp: float = 200.0
    frames: int | None = None
    history: bool = False
    seed: int | None = None

    def __post_init__(self):
        if not 1 <= self.records <= MAX_RECORDS:
            raise ValueError(f"records must be 1 to {MAX_RECORDS}, not {self.records}")
        if self.codec not in CODEC_CHOICES:
            raise ValueError(f"codec must be one of {', '.join(CODEC_CHOICES)}")
        for name in ("period", "ack_timeout", "backoff_initial", "ramp"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.answer_delay < 0:
            raise ValueError("answer_delay must not be negative")
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must be at least backoff_initial")
        if self.frames is not None and self.frames < 1:
            raise ValueError("frames must be at least 1")

    def codec_of(self, index):
        """The codec device number `index` speaks."""
        if self.codec == "mix":
            return CODECS[index % len(CODECS)]
        return self.codec
