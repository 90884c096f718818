"""One tracker's TCP connection: login, AVL frames, ACK only after storing.

The shape follows Twisted's IntNStringReceiver: a buffer and a framer, with
no busy loop.  Unlike it, the buffer is a bytearray trimmed once per frame
(the base class copies the whole buffer on every read, which is quadratic on
large frames), and the connection stops reading while a frame waits for
Redis, so a fast device cannot grow the buffer without bound and its frames
are stored, and ACKed, strictly in order.
"""

import enum

from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin

from teltonika import codec, sendqueue
from teltonika.commands import encode_command

# Three bad CRCs in a row: the link or the device is broken, and resending the
# same frame over this socket is not going to fix it.
MAX_CRC_ERRORS_IN_ROW = 3


class State(enum.Enum):
    WAITING_FOR_LOGIN = "waiting for login"
    LOGGED_IN = "logged in"
    CLOSING = "closing"


class TeltonikaProtocol(Protocol, TimeoutMixin):
    """
    The device's side of the conversation, as the server sees it.

    Everything outside the socket (authority, storage, the registry) is
    reached through the factory's interface providers; see
    L{teltonika.interfaces}.
    """

    log = Logger()

    def __init__(self):
        self.state = State.WAITING_FOR_LOGIN
        self.imei = None
        self.frames = 0
        self._buffer = bytearray()
        self._waiting = False
        self._crc_errors_in_row = 0
        self._login_deadline = None
        self._connected_at = None
        self._close_reason = None
        self._close_when_idle = None
        self._commands_fail_with = sendqueue.DISCONNECTED
        self._reading = False
        self.commands = None

    # Connection life -----------------------------------------------------

    def connectionMade(self):
        factory = self.factory
        self.callLater = factory.clock.callLater
        self._connected_at = factory.clock.seconds()
        # An absolute deadline, not an idle timer: trickling bytes must not
        # keep an unauthenticated socket open.
        self._login_deadline = factory.clock.callLater(
            factory.login_timeout, self._login_timed_out
        )
        self.commands = sendqueue.SendQueue(
            self.transport.write,
            encode_command,
            factory.clock,
            self._may_write_command,
            depth=factory.queue_depth,
        )
        factory.connection_made(self)

    def connectionLost(self, reason):
        if self._login_deadline.active():
            self._login_deadline.cancel()
        # A call that has run keeps its function, and so this protocol: let
        # go of it, so that nothing but garbage collection holds us.
        self._login_deadline = None
        self.setTimeout(None)
        self.state = State.CLOSING
        self.commands.fail_all(self._commands_fail_with)
        self.log.info(
            "disconnect imei={imei} peer={peer} reason={reason} "
            "duration={duration:.1f}s frames={frames}",
            imei=self.imei,
            peer=self._peer(),
            reason=self._close_reason or reason.getErrorMessage(),
            duration=self.factory.clock.seconds() - self._connected_at,
            frames=self.frames,
        )
        self.factory.connection_lost(self)

    def close(self, reason, commands_fail_with=sendqueue.DISCONNECTED):
        """
        Close the socket once what was written has gone out; its commands
        fail with C{commands_fail_with}.
        """
        if self.state is State.CLOSING:
            return
        self.state = State.CLOSING
        self._close_reason = reason
        self._commands_fail_with = commands_fail_with
        self.transport.loseConnection()

    def close_when_idle(self, reason, commands_fail_with):
        """Close now, or right after the frame being stored has been ACKed."""
        if self._waiting and self.state is State.LOGGED_IN:
            self._close_when_idle = (reason, commands_fail_with)
        else:
            self.close(reason, commands_fail_with)

    def timeoutConnection(self):
        self.close(f"idle for {self.factory.idle_timeout}s")

    # Reading -------------------------------------------------------------

    def dataReceived(self, data):
        if self.state is State.CLOSING:
            return
        if self.state is State.LOGGED_IN:
            self.resetTimeout()
        self._buffer += data
        self._process_buffer()

    def _process_buffer(self):
        """
        Handle every complete frame buffered, until one has to wait; once
        none is left, a command may go out.
        """
        self._reading = True
        try:
            self._handle_buffered_frames()
        finally:
            self._reading = False
        self.commands.poke()

    def _handle_buffered_frames(self):
        while not self._waiting and self.state is not State.CLOSING:
            try:
                kind, size = codec.next_frame(self._buffer, self.factory.max_frame)
            except codec.CodecError as e:
                self._bad_input(e)
                return
            if kind is codec.FrameKind.NEED_MORE:
                return
            frame = bytes(self._buffer[:size])
            del self._buffer[:size]
            if kind is codec.FrameKind.KEEPALIVE:
                continue
            if self.state is State.WAITING_FOR_LOGIN:
                if kind is codec.FrameKind.LOGIN:
                    self._login(frame)
                else:
                    self._refuse(None, "data frame before login")
            elif kind is codec.FrameKind.LOGIN:
                self._protocol_error("malformed", "second login on a logged-in socket")
            else:
                self._data_frame(frame)

    def _may_write_command(self):
        """
        Commands go out only between frames: never between a frame's arrival
        and its ACK, so the ACK bytes always come first.
        """
        return self.state is State.LOGGED_IN and not self._waiting and not self._reading

    def _wait(self):
        """Stop reading until the current frame's outcome is known."""
        self._waiting = True
        self.transport.pauseProducing()

    def _resume(self):
        self._waiting = False
        if self._close_when_idle is not None:
            self.close(*self._close_when_idle)
        if self.state is State.CLOSING:
            return
        self.transport.resumeProducing()
        self._process_buffer()

    # Login ---------------------------------------------------------------

    def _login(self, frame):
        try:
            imei = codec.decode_login(frame)
        except codec.CodecError as e:
            self._refuse(None, str(e))
            return
        self.imei = imei
        self._wait()
        d = self.factory.authority.is_allowed(imei)
        d.addCallbacks(self._authority_answered, self._authority_failed)

    def _authority_answered(self, allowed):
        if self.state is not State.WAITING_FOR_LOGIN:
            return  # the login deadline already refused it
        if not allowed:
            self._refuse(self.imei, "not on the allowlist")
            return
        self._login_deadline.cancel()
        self.state = State.LOGGED_IN
        self.transport.write(codec.encode_login_reply(True))
        self.factory.metrics.logins.labels("accepted").inc()
        self.log.info(
            "login accepted imei={imei} peer={peer}", imei=self.imei, peer=self._peer()
        )
        self.setTimeout(self.factory.idle_timeout)
        self.factory.logged_in(self)
        self._resume()

    def _authority_failed(self, failure):
        if self.state is not State.WAITING_FOR_LOGIN:
            return
        self.factory.metrics.redis_errors.labels("authority").inc()
        self._refuse(self.imei, f"authority unavailable: {failure.getErrorMessage()}")

    def _login_timed_out(self):
        if self._waiting:
            self.factory.metrics.redis_errors.labels("authority").inc()
            self._refuse(self.imei, "authority did not answer in time")
        else:
            self._refuse(self.imei, f"no login within {self.factory.login_timeout}s")

    def _refuse(self, imei, reason):
        """Answer 00 and close: any unauthenticated input ends here."""
        if self.state is State.CLOSING:
            return
        self.factory.metrics.logins.labels("refused").inc()
        self.log.info(
            "login refused imei={imei} peer={peer} reason={reason}",
            imei=imei,
            peer=self._peer(),
            reason=reason,
        )
        self.transport.write(codec.encode_login_reply(False))
        self.close("login refused: " + reason)

    # Data frames ---------------------------------------------------------

    def _data_frame(self, frame):
        received_at = self.factory.clock.seconds()
        try:
            decoded = codec.decode_frame(frame)
        except codec.CRCMismatch as e:
            self._crc_mismatch(e)
            return
        except codec.CodecError as e:
            self._bad_input(e)
            return
        self._crc_errors_in_row = 0
        self.frames += 1
        self.factory.metrics.frames.labels(decoded.codec).inc()
        if isinstance(decoded, codec.AVLPacket):
            self._store(decoded, frame, received_at)
        else:
            self._device_message(decoded, received_at)

    def _crc_mismatch(self, error):
        """No ACK: the device resends the frame; a few in a row end it."""
        self._crc_errors_in_row += 1
        self.factory.metrics.crc_errors.inc()
        self.log.warn(
            "bad frame imei={imei} peer={peer} reason=crc_mismatch ({n} in a row): "
            "{detail}",
            imei=self.imei,
            peer=self._peer(),
            n=self._crc_errors_in_row,
            detail=str(error),
        )
        if self._crc_errors_in_row >= MAX_CRC_ERRORS_IN_ROW:
            self.close(f"{self._crc_errors_in_row} CRC errors in a row")

    def _store(self, packet, frame, received_at):
        self._wait()
        d = self.factory.telemetry.store(
            self.imei, packet, frame, int(received_at * 1000)
        )
        d.addCallbacks(
            self._stored,
            self._store_failed,
            callbackArgs=(packet, received_at),
        )

    def _stored(self, written, packet, received_at):
        if self.state is State.CLOSING:
            # Stored, but the socket is gone: the device resends this frame
            # on its next connection and the fingerprint suppresses it.
            self._waiting = False
            return
        count = len(packet.records)
        self.transport.write(codec.encode_ack(count))
        metrics = self.factory.metrics
        metrics.ack_latency.observe(self.factory.clock.seconds() - received_at)
        if written:
            metrics.records.inc(count)
        else:
            metrics.duplicates.inc()
        self._resume()

    def _store_failed(self, failure):
        """
        Nothing stored, nothing ACKed.  Closing, rather than waiting, lets
        the device resend the frame on a fresh connection, whose login fails
        closed for as long as Redis is away.
        """
        self._waiting = False
        self.factory.metrics.redis_errors.labels("telemetry").inc()
        self.log.error(
            "frame not stored imei={imei}: {error}",
            imei=self.imei,
            error=failure.getErrorMessage(),
        )
        self.close("telemetry not stored")

    def _device_message(self, message, received_at):
        """A command's answer, or else kept for the back office; never ACKed."""
        if self._answers_command(message):
            return
        d = self.factory.messages.store(self.imei, message, int(received_at * 1000))
        d.addErrback(self._message_not_stored, message)

    def _answers_command(self, message):
        if message.codec not in ("12", "14"):
            return False
        if message.type == codec.ANSWER:
            return self.commands.answer(message)
        if message.codec == "14" and message.type == codec.NACK:
            return self.commands.fail_outstanding(sendqueue.NACK)
        return False

    def _message_not_stored(self, failure, message):
        self.factory.metrics.redis_errors.labels("messages").inc()
        self.log.error(
            "device message not stored imei={imei} codec={codec}: {error}",
            imei=self.imei,
            codec=message.codec,
            error=failure.getErrorMessage(),
        )

    # Bad input -----------------------------------------------------------

    def _bad_input(self, error):
        reason = _error_reasons.get(type(error), "malformed")
        if self.state is State.WAITING_FOR_LOGIN:
            self.factory.metrics.bad_frames.labels(reason).inc()
            self._refuse(None, f"{reason}: {error}")
        else:
            self._protocol_error(reason, str(error))

    def _protocol_error(self, reason, detail):
        self.factory.metrics.bad_frames.labels(reason).inc()
        self.log.warn(
            "bad frame imei={imei} peer={peer} reason={reason}: {detail}",
            imei=self.imei,
            peer=self._peer(),
            reason=reason,
            detail=detail,
        )
        self.close(reason)

    def _peer(self):
        peer = self.transport.getPeer()
        host = getattr(peer, "host", None)
        return f"{host}:{peer.port}" if host else str(peer)


_error_reasons = {
    codec.CRCMismatch: "crc_mismatch",
    codec.MalformedFrame: "malformed",
    codec.UnsupportedCodec: "unsupported_codec",
    codec.FrameTooLarge: "too_large",
}
