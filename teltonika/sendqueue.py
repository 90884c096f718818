"""The queue of commands waiting to be written to one device's socket.

A Teltonika device answers commands in the order it gets them and its answer
carries no command id, so the only safe way to match an answer to its command
is to have a single command outstanding per socket.  This queue enforces
that, bounds how many commands may wait, and gives each one exactly one
terminal outcome.  It knows nothing of Redis or of codecs: the connection
hands it a writer and an encoder, and tells it when writing is allowed.
"""

from collections import deque
from dataclasses import dataclass

from twisted.internet import defer

RESPONDED = "responded"
FAILED = "failed"

# Failure reasons of the contract that the queue itself decides.
EXPIRED = "expired"
QUEUE_FULL = "queue_full"
TIMEOUT = "timeout"
INVALID = "invalid"
# The device refused the outstanding command (Codec 14 nACK).
NACK = "nack"
# Reasons the connection gives to fail_all().
DISCONNECTED = "disconnected"
SUPERSEDED = "superseded"
SHUTDOWN = "shutdown"

DEFAULT_DEPTH = 16
DEFAULT_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Outcome:
    """The terminal status of one command, as the contract spells it."""

    status: str
    reason: str | None = None
    answer: bytes | None = None

    @classmethod
    def responded(cls, answer):
        return cls(RESPONDED, answer=answer)

    @classmethod
    def failed(cls, reason):
        return cls(FAILED, reason=reason)


@dataclass
class _Entry:
    item: object
    result: defer.Deferred
    expires_at: int | None
    timeout_ms: int
    on_delivered: object


class SendQueue:
    """
    Commands for one socket, written one at a time.

    @param writer: called with the encoded bytes of a command (usually
        C{transport.write}).
    @param encoder: turns an item into bytes; if it raises, the item fails
        with C{invalid} and is never written.
    @param clock: an L{IReactorTime}, for expiry and response timeouts.
    @param may_write: called with no arguments before every write; True when
        the device is logged in and no AVL frame is waiting for its ACK.
        Whenever that becomes true again the connection calls L{poke}.
    @param depth: how many commands may be accepted and not yet finished,
        the outstanding one included.
    """

    def __init__(self, writer, encoder, clock, may_write, depth=DEFAULT_DEPTH):
        self._writer = writer
        self._encoder = encoder
        self._clock = clock
        self._may_write = may_write
        self._depth = depth
        self._waiting = deque()
        self._outstanding = None
        self._timer = None
        self._closed_reason = None

    def __len__(self):
        """Commands accepted and not finished yet, the outstanding one included."""
        return len(self._waiting) + (self._outstanding is not None)

    def submit(self, item, expires_at=None, timeout_ms=None, on_delivered=None):
        """
        Queue C{item} for writing.

        @param expires_at: ms since the epoch after which the item must not be
            written; checked when its turn comes.
        @param timeout_ms: how long to wait for the answer once written
            (default 30 s).
        @param on_delivered: called with C{item} right after its bytes were
            handed to the writer, so the caller can report C{delivered}.
        @return: a Deferred that fires exactly once, never with a failure,
            with the item's L{Outcome}.
        """
        result = defer.Deferred()
        if self._closed_reason is not None:
            result.callback(Outcome.failed(self._closed_reason))
            return result
        if len(self) >= self._depth:
            result.callback(Outcome.failed(QUEUE_FULL))
            return result
        if timeout_ms is None:
            timeout_ms = DEFAULT_TIMEOUT_MS
        self._waiting.append(
            _Entry(item, result, expires_at, timeout_ms, on_delivered)
        )
        self._write_next()
        return result

    def poke(self):
        """The connection may write again (logged in, or an ACK went out)."""
        self._write_next()

    def answer(self, response):
        """
        The device answered: the outstanding command has responded.

        @return: False when no command is outstanding, so the caller can keep
            the answer as a device message instead.
        """
        return self._finish_outstanding(Outcome.responded(response))

    def fail_outstanding(self, reason):
        """
        The device refused the outstanding command (Codec 14 nACK: C{nack}).

        @return: False when no command is outstanding.
        """
        return self._finish_outstanding(Outcome.failed(reason))

    def fail_all(self, reason):
        """
        Fail every accepted command with C{reason}, and every later one too.

        Used when the socket closes (C{disconnected}), a newer login replaces
        it (C{superseded}) or the service stops (C{shutdown}).  Only the
        first call counts.
        """
        if self._closed_reason is not None:
            return
        self._closed_reason = reason
        self._finish_outstanding(Outcome.failed(reason))
        while self._waiting:
            self._waiting.popleft().result.callback(Outcome.failed(reason))
        # Nothing is written any more.  Letting go of the connection's
        # methods breaks the connection <-> queue cycle, so a closed
        # connection is freed at once rather than by a full collection.
        self._writer = self._encoder = self._may_write = None

    def _finish_outstanding(self, outcome):
        entry = self._outstanding
        if entry is None:
            return False
        self._outstanding = None
        if self._timer.active():
            self._timer.cancel()
        self._timer = None
        entry.result.callback(outcome)
        self._write_next()
        return True

    def _write_next(self):
        # State is updated before any callback runs, so a callback that calls
        # back into the queue (submit, fail_all) finds it consistent.
        while (
            self._closed_reason is None
            and self._outstanding is None
            and self._waiting
            and self._may_write()
        ):
            entry = self._waiting.popleft()
            if self._expired(entry):
                entry.result.callback(Outcome.failed(EXPIRED))
                continue
            try:
                data = self._encoder(entry.item)
            except Exception:
                entry.result.callback(Outcome.failed(INVALID))
                continue
            self._outstanding = entry
            self._timer = self._clock.callLater(
                entry.timeout_ms / 1000, self._finish_outstanding,
                Outcome.failed(TIMEOUT),
            )
            self._writer(data)
            if entry.on_delivered is not None:
                entry.on_delivered(entry.item)

    def _expired(self, entry):
        if entry.expires_at is None:
            return False
        return self._clock.seconds() * 1000 > entry.expires_at
