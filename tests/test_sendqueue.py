"""The per-socket command queue, on task.Clock and StringTransport."""

from twisted.internet import task
from twisted.internet.testing import StringTransport

from teltonika.sendqueue import (
    DISCONNECTED,
    EXPIRED,
    FAILED,
    INVALID,
    QUEUE_FULL,
    SHUTDOWN,
    SUPERSEDED,
    TIMEOUT,
    Outcome,
    SendQueue,
)


class Connection:
    """Stands in for the protocol: a transport, a login flag, an ACK gate."""

    def __init__(self, depth=16, logged_in=True):
        self.transport = StringTransport()
        self.clock = task.Clock()
        self.clock.advance(1_000)  # 1,000,000 ms since the epoch
        self.logged_in = logged_in
        self.acks_pending = 0
        self.queue = SendQueue(
            self.transport.write,
            lambda item: b"<" + item.encode() + b">",
            self.clock,
            lambda: self.logged_in and not self.acks_pending,
            depth=depth,
        )

    def written(self):
        return self.transport.value()

    def frame_arrives(self):
        self.acks_pending += 1

    def ack(self, count):
        self.transport.write(b"ACK%d" % count)
        self.acks_pending -= 1
        self.queue.poke()


def outcomes(*deferreds):
    seen = []
    for d in deferreds:
        d.addCallback(seen.append)
    return seen


def test_one_outstanding_then_in_order():
    conn = Connection()
    results = outcomes(*(conn.queue.submit(c) for c in ("a", "b", "c")))
    assert conn.written() == b"<a>"
    assert conn.queue.answer(b"A")
    assert conn.written() == b"<a><b>"
    assert conn.queue.answer(b"B")
    assert conn.queue.answer(b"C")
    assert conn.written() == b"<a><b><c>"
    assert results == [Outcome.responded(b"A"), Outcome.responded(b"B"),
                       Outcome.responded(b"C")]
    assert len(conn.queue) == 0


def test_nothing_written_before_login():
    conn = Connection(logged_in=False)
    results = outcomes(conn.queue.submit("a"))
    assert conn.written() == b""
    conn.logged_in = True
    conn.queue.poke()
    assert conn.written() == b"<a>"
    assert results == []


def test_ack_goes_out_before_command():
    conn = Connection()
    conn.frame_arrives()
    conn.queue.submit("getinfo")
    assert conn.written() == b""
    conn.ack(3)
    assert conn.written() == b"ACK3<getinfo>"


def test_next_command_waits_for_pending_ack_after_answer():
    conn = Connection()
    conn.queue.submit("a")
    conn.queue.submit("b")
    conn.frame_arrives()
    conn.queue.answer(b"A")
    assert conn.written() == b"<a>"
    conn.ack(1)
    assert conn.written() == b"<a>ACK1<b>"


def test_delivered_callback_after_write():
    conn = Connection()
    delivered = []
    conn.queue.submit(
        "a", on_delivered=lambda item: delivered.append((item, conn.written()))
    )
    assert delivered == [("a", b"<a>")]


def test_bound_counts_the_outstanding_command():
    conn = Connection(depth=2)
    first, second = conn.queue.submit("a"), conn.queue.submit("b")
    results = outcomes(conn.queue.submit("c"))
    assert results == [Outcome.failed(QUEUE_FULL)]
    assert not first.called and not second.called
    conn.queue.answer(b"A")
    assert outcomes(conn.queue.submit("d")) == []
    assert conn.written() == b"<a><b>"


def test_expired_item_is_never_written():
    conn = Connection()
    conn.queue.submit("a")
    now_ms = 1_000_000
    results = outcomes(
        conn.queue.submit("stale", expires_at=now_ms + 5_000),
        conn.queue.submit("fresh", expires_at=now_ms + 60_000),
    )
    conn.clock.advance(10)
    conn.queue.answer(b"A")
    assert conn.written() == b"<a><fresh>"
    assert results == [Outcome.failed(EXPIRED)]


def test_expiry_exactly_now_still_writes():
    conn = Connection()
    conn.queue.submit("a", expires_at=1_000_000)
    assert conn.written() == b"<a>"


def test_timeout_fails_and_moves_on():
    conn = Connection()
    results = outcomes(conn.queue.submit("a", timeout_ms=5_000),
                       conn.queue.submit("b"))
    conn.clock.advance(4.999)
    assert results == []
    conn.clock.advance(0.001)
    assert results == [Outcome.failed(TIMEOUT)]
    assert conn.written() == b"<a><b>"


def test_default_timeout_is_30_seconds():
    conn = Connection()
    results = outcomes(conn.queue.submit("a"))
    conn.clock.advance(29.9)
    assert results == []
    conn.clock.advance(0.1)
    assert results == [Outcome.failed(TIMEOUT)]


def test_late_answer_after_timeout_fires_nothing_twice():
    conn = Connection()
    results = outcomes(conn.queue.submit("a", timeout_ms=1_000))
    conn.clock.advance(1)
    assert conn.queue.answer(b"late") is False
    assert results == [Outcome.failed(TIMEOUT)]


def test_answer_with_nothing_outstanding_is_refused():
    conn = Connection()
    assert conn.queue.answer(b"unsolicited") is False
    assert conn.queue.fail_outstanding("nack") is False


def test_answer_cancels_the_timeout():
    conn = Connection()
    results = outcomes(conn.queue.submit("a", timeout_ms=1_000))
    conn.queue.answer(b"A")
    conn.clock.advance(5)
    assert results == [Outcome.responded(b"A")]
    assert conn.clock.getDelayedCalls() == []


def test_nack_fails_the_outstanding_command():
    conn = Connection()
    results = outcomes(conn.queue.submit("a"), conn.queue.submit("b"))
    assert conn.queue.fail_outstanding("nack")
    assert results == [Outcome.failed("nack")]
    assert conn.written() == b"<a><b>"


def test_encoder_error_fails_invalid_and_moves_on():
    conn = Connection()

    def encoder(item):
        if item == "bad":
            raise ValueError("oversize payload")
        return item.encode()

    conn.queue._encoder = encoder
    results = outcomes(conn.queue.submit("bad"), conn.queue.submit("ok"))
    assert results == [Outcome.failed(INVALID)]
    assert conn.written() == b"ok"


def test_disconnect_fails_queued_and_outstanding():
    conn = Connection()
    results = outcomes(*(conn.queue.submit(c) for c in ("a", "b", "c")))
    conn.queue.fail_all(DISCONNECTED)
    conn.clock.advance(60)
    assert results == [Outcome.failed(DISCONNECTED)] * 3
    assert conn.written() == b"<a>"
    assert conn.queue.answer(b"A") is False
    assert conn.clock.getDelayedCalls() == []


def test_superseded_then_later_submits_fail_the_same_way():
    conn = Connection()
    results = outcomes(conn.queue.submit("a"))
    conn.queue.fail_all(SUPERSEDED)
    conn.queue.fail_all(SHUTDOWN)
    results += outcomes(conn.queue.submit("b"))
    assert results == [Outcome.failed(SUPERSEDED)] * 2
    assert conn.written() == b"<a>"


def test_shutdown_fails_commands_still_waiting_for_login():
    conn = Connection(logged_in=False)
    results = outcomes(conn.queue.submit("a"), conn.queue.submit("b"))
    conn.queue.fail_all(SHUTDOWN)
    conn.logged_in = True
    conn.queue.poke()
    assert results == [Outcome.failed(SHUTDOWN)] * 2
    assert conn.written() == b""


def test_callback_that_submits_again_keeps_order():
    conn = Connection()
    first = conn.queue.submit("a")
    first.addCallback(lambda _: conn.queue.submit("c"))
    conn.queue.submit("b")
    conn.queue.answer(b"A")
    conn.queue.answer(b"B")
    assert conn.written() == b"<a><b><c>"


def test_callback_that_disconnects_fails_the_rest():
    conn = Connection()
    first = conn.queue.submit("a")
    first.addCallback(lambda _: conn.queue.fail_all(DISCONNECTED))
    results = outcomes(conn.queue.submit("b"))
    conn.queue.answer(b"A")
    assert results == [Outcome.failed(DISCONNECTED)]
    assert conn.written() == b"<a>"


def test_outcome_statuses_are_the_contract_words():
    assert Outcome.failed(TIMEOUT).status == FAILED == "failed"
    assert Outcome.responded(b"x").status == "responded"
