"""A device's TCP connection: login, then framing what the server sends.

After the login byte the server sends two kinds of things, in arbitrary
chunks: 4-byte ACKs (u32 record count) and Codec 12/14 command frames
(00000000, u32 length, codec id 0x0C/0x0E, ...).  A command may arrive while a
frame of ours is in flight (the server sent it before ours reached it), so
"the next four bytes are the ACK" is not safe.  The rule used here:

1. Four bytes not all zero: an ACK (a frame starts with a zero preamble, and
   an ACK of 1-255 records starts with a zero byte but is not all zero).
2. Four zero bytes then four more zeros: an ACK of 0 (a command's length is
   never 0; the zeros after it are the next preamble or ACK).
3. Four zero bytes, a non-zero u32, then a codec id 0x0C/0x0D/0x0E: a command
   frame, delimited by teltonika.codec.next_frame.  Anything else at byte 8
   means an ACK of 0 then an ACK (whose first byte is 0).
4. If only 4-8 bytes of case 2/3 are buffered when the ACK timeout fires, the
   four zeros were an ACK of 0: a server writes a frame whole, so its rest
   does not lag seconds behind its preamble.

ACKs that come with no frame in flight (a late ACK of a frame already resent
and ACKed) are counted and ignored.  Frames that fail to decode are counted
and skipped; a stream that cannot be framed any more closes the connection.
"""

import struct

from twisted.internet.protocol import ClientFactory, Protocol

from teltonika.codec import (
    COMMAND,
    CodecError,
    FrameKind,
    Message,
    decode_frame,
    next_frame,
)

LOGIN_ACCEPTED = 0x01
COMMAND_CODECS = (0x0C, 0x0D, 0x0E)
ZEROS = b"\x00\x00\x00\x00"
ACK = struct.Struct(">I")


class DeviceProtocol(Protocol):
    def __init__(self, device):
        self.device = device
        self._buffer = bytearray()
        self._logged_in = False
        self._closing = False
        self._answer_calls = []

    @property
    def answers_due(self):
        """Whether a command answer is still waiting for its delay."""
        return bool(self._answer_calls)

    def connectionMade(self):
        self.device.connection_made(self)

    def connectionLost(self, reason):
        self._closing = True
        for call in self._answer_calls:
            call.cancel()
        self._answer_calls.clear()
        self.device.connection_lost()

    def dataReceived(self, data):
        self._buffer += data
        self._parse()

    def _close(self):
        self._closing = True
        self.transport.loseConnection()

    def _parse(self):
        buffer = self._buffer
        while buffer and not self._closing:
            if not self._logged_in:
                accepted = buffer[0] == LOGIN_ACCEPTED
                del buffer[:1]
                if not accepted:
                    self._closing = True  # the device closes the connection
                self._logged_in = accepted
                self.device.login_answered(accepted)
                continue
            kind = self._classify()
            if kind is None:
                return
            if kind is ACK:
                (count,) = ACK.unpack_from(buffer)
                del buffer[:4]
                self.device.ack_received(count)
            elif not self._take_frame():
                return

    def _classify(self):
        """ACK, FrameKind.DATA, or None for "need more bytes"."""
        buffer = self._buffer
        if len(buffer) < 4:
            return None
        if buffer[:4] != ZEROS:
            return ACK
        if len(buffer) < 8:
            return None
        if buffer[4:8] == ZEROS:
            return ACK
        if len(buffer) < 9:
            return None
        return FrameKind.DATA if buffer[8] in COMMAND_CODECS else ACK

    def _take_frame(self):
        """Handle one command frame; False if it is not all here yet."""
        buffer = self._buffer
        try:
            kind, size = next_frame(buffer)
        except CodecError:
            self.device.context.stats.bad_frames += 1
            self._close()
            return False
        if kind is FrameKind.NEED_MORE:
            return False
        frame = bytes(buffer[:size])
        del buffer[:size]
        try:
            message = decode_frame(frame)
        except CodecError:
            message = None
        if isinstance(message, Message) and message.type == COMMAND:
            self.device.command_received(message)
        else:
            self.device.context.stats.bad_frames += 1
        return True

    def ack_overdue(self):
        """Rule 4: settle four leading zeros as an ACK of 0, then go on."""
        if len(self._buffer) < 9 and self._buffer[:4] == ZEROS:
            del self._buffer[:4]
            self.device.ack_received(0)
            self._parse()

    def answer_later(self, reply, delay):
        clock = self.device.context.reactor
        call = clock.callLater(delay, self._answer_due, reply)
        self._answer_calls.append(call)

    def _answer_due(self, reply):
        self._answer_calls = [c for c in self._answer_calls if c.active()]
        self.device.answer_ready(reply)


class DeviceFactory(ClientFactory):
    """One connection attempt of one device."""

    noisy = False

    def __init__(self, device):
        self.device = device

    def buildProtocol(self, addr):
        protocol = DeviceProtocol(self.device)
        protocol.factory = self
        return protocol

    def clientConnectionFailed(self, connector, reason):
        self.device.connection_failed()
