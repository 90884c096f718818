"""UDP datagrams: the AVL data block behind a small header, without CRC.

Layout: u16 length of the rest, u16 packet id, one byte (0x01, ignored when
reading), u8 AVL packet id, u16 IMEI length, IMEI digits, AVL data.  The ACK
echoes both ids; a wrong packet id makes devices resend.
"""

import struct
from typing import NamedTuple

from teltonika.codec.avl import decode_avl_data, encode_avl_data
from teltonika.codec.errors import CodecError, MalformedFrame
from teltonika.codec.imei import check_imei

# packet id, not-usable byte, AVL packet id, IMEI length
_HEADER = struct.Struct(">HBBH")
_U16 = struct.Struct(">H")
_ACK = struct.Struct(">HHBBB")


class UDPPacket(NamedTuple):
    packet_id: int
    avl_packet_id: int
    imei: str
    codec: str
    records: tuple


def decode_udp(datagram):
    """Decode one datagram; raise a ``CodecError`` subclass if it is not one."""
    datagram = bytes(datagram)
    size = len(datagram)
    if size < 2 + _HEADER.size:
        raise MalformedFrame(
            f"a datagram needs at least {2 + _HEADER.size} bytes of header, got {size}"
        )
    length = _U16.unpack_from(datagram)[0]
    if length != size - 2:
        raise MalformedFrame(
            f"length field at offset 0 says {length} bytes follow, {size - 2} do"
        )
    packet_id, _, avl_packet_id, imei_length = _HEADER.unpack_from(datagram, 2)
    imei_start = 2 + _HEADER.size
    imei = datagram[imei_start : imei_start + imei_length]
    if imei_length != 15 or len(imei) != 15 or not imei.isdigit():
        raise MalformedFrame(
            f"IMEI at offset {imei_start} must be 15 ASCII digits, got "
            f"{imei_length} bytes: {imei!r}"
        )
    codec, records = decode_avl_data(datagram, imei_start + 15, size)
    return UDPPacket(packet_id, avl_packet_id, imei.decode(), codec, records)


def encode_udp(codec, records, imei, packet_id, avl_packet_id, widths=None):
    check_imei(imei)
    try:
        header = _HEADER.pack(packet_id, 1, avl_packet_id, 15)
    except struct.error:
        raise CodecError(
            f"packet id {packet_id!r} (u16) or AVL packet id {avl_packet_id!r} "
            f"(u8) out of range"
        ) from None
    rest = header + imei.encode() + encode_avl_data(codec, records, widths)
    if len(rest) > 0xFFFF:
        raise CodecError(f"a datagram holds at most 65535 bytes, got {len(rest)}")
    return _U16.pack(len(rest)) + rest


def encode_udp_ack(packet_id, avl_packet_id, count):
    try:
        return _ACK.pack(5, packet_id, 1, avl_packet_id, count)
    except struct.error:
        raise CodecError(
            f"UDP ACK fields out of range: packet id {packet_id!r} (u16), "
            f"AVL packet id {avl_packet_id!r} (u8), count {count!r} (u8)"
        ) from None
