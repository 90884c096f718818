"""One tracker's life: record buffer, frame in flight, login, backoff, answers.

The device is the state that outlives a TCP connection: the records not yet
ACKed (never dropped), the frame waiting for its ACK (resent byte for byte,
also after a reconnect), the reconnect backoff.  Its connection
(protocol.DeviceProtocol) only frames bytes and calls back in here, so all of
this runs under a task.Clock and a StringTransport in tests.

Device rules, as on a real tracker:
- One frame in flight at a time; it carries the oldest `records` unACKed
  records.  An ACK whose count differs is ignored, so the frame is resent,
  identical, when `ack_timeout` expires, as when no ACK comes.
- After an ACK, backlog (records kept while offline) goes out at once, a
  frame at a time.
- Command answers wait until no frame is in flight (Teltonika: commands come
  after the ACK), and go out before the next frame.
- A refused login or lost connection means reconnecting after
  min(backoff_max, backoff_initial * 2**failures) * uniform(0.5, 1) seconds;
  failures resets on an accepted login.
"""

from teltonika.codec import ANSWER, NACK, encode_avl, encode_login, encode_message
from teltonika.sim.commands import DIGITAL_OUTPUTS, answer
from teltonika.sim.vehicle import IO_WIDTHS

# States.
OFF = "off"
CONNECTING = "connecting"
LOGGING_IN = "logging in"
ONLINE = "online"
WAITING = "waiting to reconnect"
STOPPING = "stopping"
STOPPED = "stopped"


class DeviceContext:
    """What all devices of a fleet share, so a device needs one slot for it.

    connect(device) starts a TCP connection attempt and returns its
    IConnector; stopped(device) is told when a device has stopped for good.
    """

    __slots__ = ("config", "connect", "reactor", "rng", "stats", "stopped")

    def __init__(self, reactor, config, stats, rng, connect, stopped):
        self.reactor = reactor
        self.config = config
        self.stats = stats
        self.rng = rng
        self.connect = connect
        self.stopped = stopped


class Device:
    """One tracker.  Public attributes tests read:

    imei, codec, state; pending: records not yet ACKed, oldest first;
    acked: how many records were ACKed (always the oldest generated ones);
    generated / commands: with Config.history, every record generated and
    every command Message received, else None.
    """

    __slots__ = (
        "ack_timer",
        "acked",
        "batches_left",
        "codec",
        "commands",
        "connector",
        "context",
        "failures",
        "generated",
        "imei",
        "in_flight",
        "in_flight_count",
        "outputs",
        "pending",
        "protocol",
        "ready_answers",
        "retry_timer",
        "sent_at",
        "state",
        "vehicle",
    )

    def __init__(self, imei, codec, vehicle, context):
        self.imei = imei
        self.codec = codec
        self.vehicle = vehicle
        self.context = context
        self.state = OFF
        self.protocol = None
        self.connector = None
        self.pending = []
        self.in_flight = None
        self.in_flight_count = 0
        self.sent_at = 0.0
        self.ack_timer = None
        self.retry_timer = None
        self.failures = 0
        self.batches_left = context.config.frames
        self.acked = 0
        history = context.config.history
        self.generated = [] if history else None
        self.commands = [] if history else None
        self.ready_answers = []
        self.outputs = [0] * DIGITAL_OUTPUTS

    @property
    def acked_records(self):
        """The records ACKed so far (needs Config.history)."""
        return self.generated[: self.acked]

    # Connection life.

    def power_on(self):
        self.context.stats.devices_started += 1
        self._connect()

    def _connect(self):
        self.state = CONNECTING
        self.retry_timer = None
        self.connector = self.context.connect(self)

    def connection_made(self, protocol):
        self.connector = None
        self.protocol = protocol
        self.state = LOGGING_IN
        protocol.transport.write(encode_login(self.imei))

    def login_answered(self, accepted):
        stats = self.context.stats
        if not accepted:
            stats.logins_refused += 1
            self.protocol.transport.loseConnection()
            return
        stats.logins += 1
        self.failures = 0
        self.state = ONLINE
        if self.in_flight is None:
            self._send_ready()
        else:
            stats.frames_resent += 1
            self._transmit()

    def connection_lost(self):
        self.protocol = None
        self.ready_answers.clear()
        self._cancel_ack_timer()
        if self.state == STOPPING:
            self._stopped()
        else:
            self.context.stats.disconnects += 1
            self._retry_later()

    def connection_failed(self):
        self.connector = None
        if self.state == STOPPING:
            self._stopped()
        else:
            self.context.stats.connect_failures += 1
            self._retry_later()

    def backoff_delay(self):
        config = self.context.config
        ceiling = config.backoff_initial * 2 ** min(self.failures, 32)
        return min(config.backoff_max, ceiling) * self.context.rng.uniform(0.5, 1.0)

    def _retry_later(self):
        self.state = WAITING
        delay = self.backoff_delay()
        self.failures += 1
        self.retry_timer = self.context.reactor.callLater(delay, self._connect)

    def stop(self):
        """Disconnect for good; the context hears `stopped` once closed."""
        if self.state in (STOPPING, STOPPED):
            return
        self.state = STOPPING
        self._cancel_ack_timer()
        if self.retry_timer is not None:
            self.retry_timer.cancel()
            self.retry_timer = None
        if self.protocol is not None:
            self.protocol.transport.loseConnection()
        elif self.connector is not None:
            self.connector.stopConnecting()
        else:
            self._stopped()

    def _stopped(self):
        self.state = STOPPED
        self.context.stats.devices_done += 1
        self.context.stopped(self)

    # Recording and sending.

    def tick(self):
        """Record a batch; the fleet's ticker calls this once a period."""
        if self.batches_left == 0 or self.state in (STOPPING, STOPPED):
            return
        if self.batches_left is not None:
            self.batches_left -= 1
        config = self.context.config
        step = config.period / config.records
        now = self.context.reactor.seconds()
        for index in range(config.records):
            taken = now - (config.records - 1 - index) * step
            record = self.vehicle.record(taken * 1000, step)
            self.pending.append(record)
            if self.generated is not None:
                self.generated.append(record)
        self.context.stats.records += config.records
        self._send_ready()

    def _send_ready(self):
        """Write what may go now: answers first, then the next frame."""
        if self.state != ONLINE or self.in_flight is not None:
            return
        if self.ready_answers:
            for reply in self.ready_answers:
                self.protocol.transport.write(reply)
            self.context.stats.commands_answered += len(self.ready_answers)
            self.ready_answers.clear()
        if self.pending:
            batch = self.pending[: self.context.config.records]
            self.in_flight = encode_avl(self.codec, batch, IO_WIDTHS)
            self.in_flight_count = len(batch)
            self.context.stats.frames_sent += 1
            self._transmit()
        elif self.batches_left == 0 and not self.protocol.answers_due:
            self.stop()

    def _transmit(self):
        self.protocol.transport.write(self.in_flight)
        reactor = self.context.reactor
        self.sent_at = reactor.seconds()
        self.ack_timer = reactor.callLater(
            self.context.config.ack_timeout, self._ack_timed_out
        )

    def _ack_timed_out(self):
        self.ack_timer = None
        self.protocol.ack_overdue()
        # ack_overdue may have settled the frame (and sent the next one).
        if self.in_flight is not None and self.ack_timer is None:
            self.context.stats.frames_resent += 1
            self._transmit()

    def _cancel_ack_timer(self):
        if self.ack_timer is not None:
            self.ack_timer.cancel()
            self.ack_timer = None

    def ack_received(self, count):
        stats = self.context.stats
        if self.in_flight is None:
            stats.late_acks += 1
            return
        if count != self.in_flight_count:
            stats.wrong_acks += 1
            return
        self._cancel_ack_timer()
        stats.ack_latency.add(self.context.reactor.seconds() - self.sent_at)
        del self.pending[:count]
        self.acked += count
        self.in_flight = None
        stats.records_acked += count
        stats.frames_acked += 1
        self._send_ready()

    # Commands.

    def command_received(self, message):
        """Answer a Codec 12/14 command (type 0x05) after answer_delay."""
        stats = self.context.stats
        stats.commands_received += 1
        if self.commands is not None:
            self.commands.append(message)
        if message.codec == "14" and message.imei != self.imei:
            stats.nacks_sent += 1
            reply = encode_message("14", NACK, b"", imei=self.imei)
        else:
            command = message.payload.decode("ascii", "replace")
            text = answer(command, self.imei, self.vehicle, self.outputs)
            imei = self.imei if message.codec == "14" else None
            reply = encode_message(message.codec, ANSWER, text.encode(), imei=imei)
        self.protocol.answer_later(reply, self.context.config.answer_delay)

    def answer_ready(self, reply):
        self.ready_answers.append(reply)
        self._send_ready()
