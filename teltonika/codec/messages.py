"""Codec 12, 13 and 14 frames: commands to devices and what devices answer.

All three share one body: codec id, quantity 1, type, u32 size, payload,
quantity 2.  Codec 13 puts a u32 timestamp in seconds first, and Codec 14 the
IMEI as 8 bytes of decimal digits (hex nibbles, one leading 0); the size field
counts those bytes.  Any type decodes generically (0x05 command, 0x06 answer,
0x11 Codec 14 nACK, 0x0D camera...): what a type means is the caller's
business.
"""

import struct
from typing import NamedTuple

from teltonika.codec.errors import CodecError, MalformedFrame
from teltonika.codec.imei import check_imei

CODEC_IDS = {"12": 0x0C, "13": 0x0D, "14": 0x0E}

# The message types both sides of a command exchange use.
COMMAND = 0x05  # server to device
ANSWER = 0x06  # device to server: the command's answer (Codec 14: an ACK)
NACK = 0x11  # device to server, Codec 14 only: the IMEI is not mine
CODEC_NAMES = {codec_id: name for name, codec_id in CODEC_IDS.items()}

# codec id, quantity 1, type, size
_HEAD = struct.Struct(">BBBI")
_U32 = struct.Struct(">I")


class Message(NamedTuple):
    """One Codec 12/13/14 frame.

    ``payload`` excludes Codec 14's IMEI and Codec 13's timestamp; ``imei``
    is set for Codec 14 only, ``timestamp`` (ms, whole seconds) for Codec 13
    only.
    """

    codec: str
    type: int
    payload: bytes
    imei: str | None = None
    timestamp: int | None = None


def decode_message_data(buf, start, end):
    """Decode the message body ``buf[start:end]`` (codec id .. quantity 2)."""
    if end - start < _HEAD.size + 1:
        raise MalformedFrame(
            f"a Codec 12/13/14 body needs at least {_HEAD.size + 1} bytes at "
            f"offset {start}, got {end - start}"
        )
    codec_id, quantity, message_type, size = _HEAD.unpack_from(buf, start)
    codec = CODEC_NAMES[codec_id]
    pos = start + _HEAD.size
    if pos + size + 1 != end:
        raise MalformedFrame(
            f"size field at offset {start + 3} says {size} bytes, but "
            f"{end - 1 - pos} bytes lie between it and quantity 2"
        )
    if quantity != 1 or buf[end - 1] != 1:
        raise MalformedFrame(
            f"quantities at offsets {start + 1} and {end - 1} must both be 1, "
            f"got {quantity} and {buf[end - 1]}"
        )
    imei = timestamp = None
    if codec == "13":
        if size < 4:
            raise MalformedFrame(
                f"Codec 13 size at offset {start + 3} must count the 4-byte "
                f"timestamp, got {size}"
            )
        timestamp = _U32.unpack_from(buf, pos)[0] * 1000
        pos += 4
    elif codec == "14":
        if size < 8:
            raise MalformedFrame(
                f"Codec 14 size at offset {start + 3} must count the 8-byte "
                f"IMEI, got {size}"
            )
        imei = decode_imei_field(buf[pos : pos + 8], pos)
        pos += 8
    return Message(codec, message_type, bytes(buf[pos : end - 1]), imei, timestamp)


def decode_imei_field(field, offset):
    """The 15-digit IMEI of Codec 14's 8-byte field (hex nibbles, leading 0)."""
    digits = bytes(field).hex()
    if not (digits.isdigit() and digits[0] == "0"):
        raise MalformedFrame(
            f"IMEI field at offset {offset} must be 0 and 15 decimal digits "
            f"as hex nibbles, got {digits}"
        )
    return digits[1:]


def encode_imei_field(imei):
    check_imei(imei)
    return bytes.fromhex("0" + imei)


def encode_message_data(codec, message_type, payload, imei=None, timestamp=None):
    """The body (codec id .. quantity 2) of a Codec 12/13/14 frame."""
    codec_id = CODEC_IDS.get(codec)
    if codec_id is None:
        raise CodecError(f"cannot encode codec {codec!r}: use '12', '13' or '14'")
    if isinstance(payload, str):
        payload = payload.encode()
    prefix = b""
    if codec == "14":
        prefix = encode_imei_field(imei)
    elif imei is not None:
        raise CodecError(f"only Codec 14 carries an IMEI, not codec {codec}")
    if codec == "13":
        if timestamp is None or timestamp % 1000:
            raise CodecError(
                f"Codec 13 needs a timestamp in whole seconds (ms), got {timestamp!r}"
            )
        try:
            prefix = _U32.pack(timestamp // 1000)
        except struct.error:
            raise CodecError(
                f"timestamp {timestamp} does not fit 32-bit seconds"
            ) from None
    elif timestamp is not None:
        raise CodecError(f"only Codec 13 carries a timestamp, not codec {codec}")
    body = prefix + bytes(payload)
    try:
        head = _HEAD.pack(codec_id, 1, message_type, len(body))
    except struct.error:
        raise CodecError(f"message type {message_type!r} is not a byte") from None
    return head + body + b"\x01"
