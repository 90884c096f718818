"""Teltonika wire formats: pure functions, bytes in, values out.

Codecs 8, 8 Extended and 16 over TCP and UDP, commands and answers in Codecs
12, 13 and 14, the TCP framer and the CRC.  No I/O, no Twisted: the server,
the simulator and the ``teltonika-decode`` tool all build on this.
"""

from teltonika.codec.avl import AVLPacket, AVLRecord
from teltonika.codec.crc import crc16
from teltonika.codec.errors import (
    CodecError,
    CRCMismatch,
    FrameTooLarge,
    MalformedFrame,
    UnsupportedCodec,
)
from teltonika.codec.framing import (
    MAX_FRAME,
    FrameKind,
    decode_frame,
    decode_login,
    encode_ack,
    encode_avl,
    encode_login,
    encode_login_reply,
    encode_message,
    next_frame,
)
from teltonika.codec.imei import is_imei
from teltonika.codec.jsonview import frame_to_json, record_to_json
from teltonika.codec.messages import ANSWER, COMMAND, NACK, Message
from teltonika.codec.udp import UDPPacket, decode_udp, encode_udp, encode_udp_ack

__all__ = [
    "ANSWER",
    "COMMAND",
    "MAX_FRAME",
    "NACK",
    "AVLPacket",
    "AVLRecord",
    "CRCMismatch",
    "CodecError",
    "FrameKind",
    "FrameTooLarge",
    "MalformedFrame",
    "Message",
    "UDPPacket",
    "UnsupportedCodec",
    "crc16",
    "decode_frame",
    "decode_login",
    "decode_udp",
    "encode_ack",
    "encode_avl",
    "encode_login",
    "encode_login_reply",
    "encode_message",
    "encode_udp",
    "encode_udp_ack",
    "frame_to_json",
    "is_imei",
    "next_frame",
    "record_to_json",
]
