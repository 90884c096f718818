"""TCP framing: where frames start and end in a device's byte stream, and
the envelope (preamble, length, CRC) around every data frame.

The framer is stateless: it says what the buffered bytes start with, and the
server decides whether that is acceptable in its state (a login after a
login, data before a login...).
"""

import enum
import struct

from teltonika.codec.avl import LAYOUTS, AVLPacket, decode_avl_data, encode_avl_data
from teltonika.codec.crc import crc16
from teltonika.codec.errors import (
    CodecError,
    CRCMismatch,
    FrameTooLarge,
    MalformedFrame,
    UnsupportedCodec,
)
from teltonika.codec.imei import check_imei
from teltonika.codec.messages import (
    CODEC_NAMES,
    decode_message_data,
    encode_message_data,
)

MAX_FRAME = 65536
MAX_LOGIN = 64
# Codec id and the two record counts of an empty AVL frame.
MIN_DATA_LENGTH = 3
PREAMBLE = b"\x00\x00\x00\x00"

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_ENVELOPE = 12  # preamble, data length, CRC field


class FrameKind(enum.Enum):
    NEED_MORE = "need more"
    KEEPALIVE = "keep-alive"
    LOGIN = "login"
    DATA = "data"


def next_frame(buf, max_frame=MAX_FRAME):
    """What ``buf`` (everything buffered so far) starts with: (kind, bytes).

    Raises ``MalformedFrame`` as soon as the bytes cannot start a frame, and
    ``FrameTooLarge`` as soon as a data frame's header declares more than
    ``max_frame`` bytes of data, before its body is buffered.
    """
    size = len(buf)
    if not size:
        return FrameKind.NEED_MORE, 0
    first = buf[0]
    if first == 0xFF:
        return FrameKind.KEEPALIVE, 1
    if first:
        raise MalformedFrame(
            f"byte 0x{first:02x} at offset 0 starts no frame: expected 0x00 "
            f"(a login or data frame) or 0xff (keep-alive)"
        )
    if size < 2:
        return FrameKind.NEED_MORE, 0
    login_length = buf[1]
    if login_length:
        if login_length > MAX_LOGIN:
            raise MalformedFrame(
                f"login length at offset 0 is {login_length}, at most "
                f"{MAX_LOGIN} expected"
            )
        if size < 2 + login_length:
            return FrameKind.NEED_MORE, 0
        return FrameKind.LOGIN, 2 + login_length
    for offset in range(2, min(size, 4)):
        if buf[offset]:
            raise MalformedFrame(
                f"byte 0x{buf[offset]:02x} at offset {offset}: a data frame "
                f"starts with 4 zero bytes, a login with a length of 1-{MAX_LOGIN}"
            )
    if size < 8:
        return FrameKind.NEED_MORE, 0
    length = _U32.unpack_from(buf, 4)[0]
    _check_declared_length(length, max_frame)
    if size < _ENVELOPE + length:
        return FrameKind.NEED_MORE, 0
    return FrameKind.DATA, _ENVELOPE + length


def _check_declared_length(length, max_frame):
    if length > max_frame:
        raise FrameTooLarge(
            f"data length at offset 4 is {length} bytes, the limit is {max_frame}"
        )
    if length < MIN_DATA_LENGTH:
        raise MalformedFrame(
            f"data length at offset 4 is {length}, at least {MIN_DATA_LENGTH} "
            f"expected (codec id and two record counts)"
        )


def decode_login(frame):
    """The IMEI of a complete login frame (u16 length + 15 ASCII digits)."""
    frame = bytes(frame)
    if len(frame) < 2:
        raise MalformedFrame(f"a login needs a 2-byte length, got {len(frame)} bytes")
    length = _U16.unpack_from(frame)[0]
    imei = frame[2:]
    if length != len(imei):
        raise MalformedFrame(
            f"login length at offset 0 says {length} bytes, {len(imei)} follow"
        )
    if length != 15 or not imei.isdigit():
        raise MalformedFrame(
            f"the IMEI at offset 2 must be 15 ASCII digits, got {imei!r}"
        )
    return imei.decode()


def encode_login(imei):
    check_imei(imei)
    return _U16.pack(15) + imei.encode()


def encode_login_reply(accepted):
    """The server's one-byte answer to a login."""
    return b"\x01" if accepted else b"\x00"


def encode_ack(count):
    """The 4-byte answer to a data frame: how many records were accepted."""
    try:
        return _U32.pack(count)
    except struct.error:
        raise CodecError(f"ACK count {count!r} is not a u32") from None


def decode_frame(frame):
    """Decode one complete TCP data frame into an AVLPacket or a Message."""
    frame = bytes(frame)
    size = len(frame)
    if size < _ENVELOPE + MIN_DATA_LENGTH:
        raise MalformedFrame(
            f"a data frame needs at least {_ENVELOPE + MIN_DATA_LENGTH} bytes, "
            f"got {size}"
        )
    if frame[:4] != PREAMBLE:
        raise MalformedFrame(
            f"expected the zero preamble at offset 0, got {frame[:4].hex()}"
        )
    length = _U32.unpack_from(frame, 4)[0]
    if length + _ENVELOPE != size:
        raise MalformedFrame(
            f"data length at offset 4 says {length} bytes, so the frame should be "
            f"{length + _ENVELOPE} bytes; it is {size}"
        )
    crc_offset = size - 4
    stated = _U32.unpack_from(frame, crc_offset)[0]
    computed = crc16(frame[8:crc_offset])
    if stated != computed:
        raise CRCMismatch(
            f"CRC field at offset {crc_offset} is 0x{stated:08x}, the CRC of "
            f"bytes 8-{crc_offset - 1} is 0x{computed:04x}"
        )
    codec_id = frame[8]
    if codec_id in LAYOUTS:
        # decode_avl_data returns (codec, records): build the packet in C.
        return tuple.__new__(AVLPacket, decode_avl_data(frame, 8, crc_offset))
    if codec_id in CODEC_NAMES:
        return decode_message_data(frame, 8, crc_offset)
    raise UnsupportedCodec(
        f"codec id 0x{codec_id:02x} at offset 8 is not supported "
        f"(0x08, 0x8e, 0x10, 0x0c, 0x0d and 0x0e are)"
    )


def wrap(data):
    """A TCP data frame around ``data`` (codec id .. quantity/number 2)."""
    return PREAMBLE + _U32.pack(len(data)) + data + _U32.pack(crc16(data))


def encode_avl(codec, records, widths=None):
    return wrap(encode_avl_data(codec, records, widths))


def encode_message(codec, type, payload, imei=None, timestamp=None):
    return wrap(encode_message_data(codec, type, payload, imei, timestamp))
