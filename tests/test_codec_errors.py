"""Each bad input the codec handles, and the error it raises (with where)."""

import struct

import pytest
from test_codec_vectors import frame_bytes, repair

from teltonika.codec import (
    AVLRecord,
    CodecError,
    CRCMismatch,
    FrameKind,
    FrameTooLarge,
    MalformedFrame,
    Message,
    UnsupportedCodec,
    crc16,
    decode_frame,
    decode_login,
    decode_udp,
    encode_ack,
    encode_avl,
    encode_login,
    encode_message,
    encode_udp,
    encode_udp_ack,
    frame_to_json,
    is_imei,
    next_frame,
    record_to_json,
)

RECORD = AVLRecord(1, 0, 2, 3, 4, 5, 6, 7, 8, {1: 1})


def frame_around(body):
    return (
        b"\0\0\0\0"
        + struct.pack(">I", len(body))
        + body
        + struct.pack(">I", crc16(body))
    )


def test_crc16_check_value():
    assert crc16(b"123456789") == 0xBB3D
    assert crc16(bytearray(b"123456789")) == crc16(memoryview(b"123456789"))


def test_crc16_of_long_data():
    data = bytes(range(256)) * 300
    crc = 0
    for octet in data[:1000]:
        crc ^= octet
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    assert crc16(data[:1000]) == crc
    assert crc16(data) == crc16(b"\0" * 5 + data)


# The framer.


def test_framer_kinds():
    assert next_frame(b"") == (FrameKind.NEED_MORE, 0)
    assert next_frame(b"\xff\x00\x0f") == (FrameKind.KEEPALIVE, 1)
    assert next_frame(b"\x00") == (FrameKind.NEED_MORE, 0)
    assert next_frame(b"\x00\x00\x00") == (FrameKind.NEED_MORE, 0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x05", "byte 0x05 at offset 0 starts no frame"),
        (b"\x00\x41", "login length at offset 0 is 65, at most 64 expected"),
        (b"\x00\x00\x01", "byte 0x01 at offset 2: a data frame starts with 4 zero"),
        (b"\x00\x00\x00\x07", "byte 0x07 at offset 3"),
        (b"\0\0\0\0\0\0\0\x02", "data length at offset 4 is 2, at least 3 expected"),
    ],
)
def test_framer_rejects_at_once(data, message):
    with pytest.raises(MalformedFrame, match=message):
        next_frame(data)


def test_framer_rejects_large_frame_from_its_header():
    with pytest.raises(FrameTooLarge, match="is 65537 bytes, the limit is 65536"):
        next_frame(b"\0\0\0\0\x00\x01\x00\x01")
    assert next_frame(b"\0\0\0\0\x00\x01\x00\x00") == (FrameKind.NEED_MORE, 0)
    with pytest.raises(FrameTooLarge, match="is 101 bytes, the limit is 100"):
        next_frame(b"\0\0\0\0\x00\x00\x00\x65", max_frame=100)


@pytest.mark.parametrize(
    ("login", "message"),
    [
        (b"\x00", "a login needs a 2-byte length, got 1 bytes"),
        (b"\x00\x0f123", "login length at offset 0 says 15 bytes, 3 follow"),
        (b"\x00\x0e12345678901234", "must be 15 ASCII digits"),
        (b"\x00\x0f12345678901234a", "must be 15 ASCII digits"),
    ],
)
def test_bad_logins(login, message):
    with pytest.raises(MalformedFrame, match=message):
        decode_login(login)


# The TCP envelope.


def test_frame_too_short_or_without_preamble():
    with pytest.raises(MalformedFrame, match="at least 15 bytes, got 14"):
        decode_frame(bytes(14))
    frame = bytearray(frame_bytes("wiki_codec8_ex1"))
    frame[2] = 1
    with pytest.raises(MalformedFrame, match="zero preamble at offset 0, got 00000100"):
        decode_frame(frame)


def test_crc_field_with_high_bits_set():
    frame = bytearray(frame_bytes("wiki_codec8_ex1"))
    frame[-4] = 1
    with pytest.raises(CRCMismatch, match="is 0x0100c7cf"):
        decode_frame(frame)


def test_unknown_codec():
    with pytest.raises(UnsupportedCodec, match="codec id 0x99 at offset 8"):
        decode_frame(frame_around(b"\x99\x00\x00"))


# AVL data.


def test_record_counts_disagree():
    with pytest.raises(MalformedFrame, match="number of data 1 at offset 9 is 1 but"):
        decode_frame(frame_around(b"\x08\x01\x00"))


def test_bytes_left_over():
    body = encode_avl("8", [RECORD])[8:-4]
    with pytest.raises(MalformedFrame, match="2 bytes left over at offset 42"):
        decode_frame(frame_around(body[:-1] + b"\xaa\xbb" + body[-1:]))


def test_record_fixed_fields_cut():
    with pytest.raises(
        MalformedFrame,
        match="record 1: the record header needs 27 bytes at offset 10, "
        "records end at 30",
    ):
        decode_frame(frame_around(b"\x08\x01" + bytes(20) + b"\x01"))


def test_io_group_cut():
    body = encode_avl("8", [RECORD._replace(io={1: 0x1234})])[8:-4]
    body = body[:31] + body[-1:]  # cut inside the 2-byte group
    with pytest.raises(
        MalformedFrame,
        match="record 1: IO group of 2-byte values needs 4 bytes at offset 38, "
        "records end at 39",
    ):
        decode_frame(frame_around(body))


def test_total_count_disagrees():
    body = bytearray(encode_avl("8", [RECORD])[8:-4])
    body[2 + 25] = 2  # total IO count
    with pytest.raises(MalformedFrame, match="total IO count says 2 elements"):
        decode_frame(frame_around(bytes(body)))


def test_nx_element_cut():
    frame = encode_avl("8E", [RECORD._replace(nx={7: b"abcdef"})])
    body = frame[8:-4]
    with pytest.raises(MalformedFrame, match="NX element 7's value needs 6 bytes"):
        decode_frame(frame_around(body[:-4] + body[-1:]))
    with pytest.raises(MalformedFrame, match="an NX element header needs 4 bytes"):
        decode_frame(frame_around(body[:-9] + body[-1:]))


# Codec 12/13/14.


def test_message_problems():
    with pytest.raises(MalformedFrame, match="needs at least 8 bytes at offset 8"):
        decode_frame(frame_around(b"\x0c\x01\x05\x00"))
    with pytest.raises(MalformedFrame, match="quantities at offsets 9 and 16"):
        decode_frame(frame_around(b"\x0c\x02\x05\x00\x00\x00\x01a\x02"))
    with pytest.raises(MalformedFrame, match="must count the 4-byte timestamp"):
        decode_frame(frame_around(b"\x0d\x01\x06\x00\x00\x00\x01a\x01"))
    with pytest.raises(MalformedFrame, match="must count the 8-byte IMEI"):
        decode_frame(frame_around(b"\x0e\x01\x06\x00\x00\x00\x01a\x01"))
    bad_imei = b"\x0e\x01\x06\x00\x00\x00\x08" + bytes.fromhex("1352093081452a51")
    with pytest.raises(MalformedFrame, match="IMEI field at offset 15"):
        decode_frame(frame_around(bad_imei + b"\x01"))


# UDP.


def test_udp_problems():
    good = encode_udp("8", [RECORD], "123456789012345", 1, 2)
    with pytest.raises(MalformedFrame, match="at least 8 bytes of header, got 3"):
        decode_udp(good[:3])
    with pytest.raises(MalformedFrame, match="says 56 bytes follow, 55 do"):
        decode_udp(good[:-1])
    bad_imei = good[:10] + b"x" + good[11:]
    with pytest.raises(MalformedFrame, match="IMEI at offset 8 must be 15 ASCII"):
        decode_udp(bad_imei)
    command = struct.pack(">H", len(good) - 2) + good[2:23] + b"\x0c" + good[24:]
    with pytest.raises(UnsupportedCodec, match="0x0c at offset 23 is not an AVL"):
        decode_udp(command)
    with pytest.raises(MalformedFrame, match="at least 3 bytes"):
        decode_udp(struct.pack(">H", 23) + good[2:23] + b"\x08\x00")


# Encoders refuse what they cannot represent.


@pytest.mark.parametrize(
    ("codec", "record", "widths", "message"),
    [
        ("7", RECORD, None, "cannot encode codec '7'"),
        ("8", RECORD._replace(nx={1: b"x"}), None, "codec 8 has no NX"),
        ("8E", RECORD._replace(generation=1), None, "codec 8E has no generation"),
        ("16", RECORD, None, "codec 16 records need a generation"),
        ("8", RECORD._replace(io={256: 1}), None, "IO id 256 does not fit codec 8"),
        ("8", RECORD._replace(io={1: -1}), None, "values are unsigned"),
        ("8", RECORD._replace(io={1: 2**64}), None, "does not fit in 8 bytes"),
        ("8", RECORD, {1: 3}, "width 3 is not 1, 2, 4 or 8"),
        ("8", RECORD._replace(io={1: 300}), {1: 1}, "record 1: a value is out of"),
        ("8", RECORD._replace(priority=256), None, "record 1: a value is out of"),
        ("8", RECORD._replace(io=dict.fromkeys(range(256), 1)), None, "256 IO"),
    ],
)
def test_encode_avl_refuses(codec, record, widths, message):
    with pytest.raises(CodecError, match=message):
        encode_avl(codec, [record], widths)


def test_encoders_refuse_bad_values():
    with pytest.raises(CodecError, match="at most 255 records"):
        encode_avl("8", [RECORD] * 256)
    with pytest.raises(CodecError, match="15 decimal digits"):
        encode_login("12345")
    with pytest.raises(CodecError, match="15 decimal digits"):
        encode_udp("8", [], "1234567890123456", 1, 1)
    with pytest.raises(CodecError, match="out of range"):
        encode_udp("8", [], "123456789012345", 65536, 1)
    with pytest.raises(CodecError, match="at most 65535 bytes"):
        encode_udp(
            "8E",
            [RECORD._replace(nx={1: bytes(40000), 2: bytes(40000)})],
            "123456789012345",
            1,
            1,
        )
    with pytest.raises(CodecError, match="UDP ACK fields out of range"):
        encode_udp_ack(1, 1, 256)
    with pytest.raises(CodecError, match="ACK count -1"):
        encode_ack(-1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("15", 5, b""), "cannot encode codec '15'"),
        (("14", 5, b"getver", "35209308145225"), "15 decimal digits"),
        (("12", 5, b"x", "352093081452251"), "only Codec 14 carries an IMEI"),
        (("13", 6, b"x", None, 1500), "whole seconds"),
        (("13", 6, b"x"), "whole seconds"),
        (("13", 6, b"x", None, 2**32 * 1000), "does not fit 32-bit"),
        (("12", 5, b"x", None, 1000), "only Codec 13 carries a timestamp"),
        (("12", 256, b"x"), "message type 256 is not a byte"),
    ],
)
def test_encode_message_refuses(args, message):
    with pytest.raises(CodecError, match=message):
        encode_message(*args)


def test_text_commands_are_encoded_as_utf8():
    assert encode_message("12", 5, "getinfo") == frame_bytes("wiki_codec12_getinfo_cmd")


# JSON views.


def test_json_views():
    record = RECORD._replace(lon=-706496700, lat=-334398233, nx={9: b"\x01\xab"})
    assert record_to_json(record)["lon"] == -70.64967
    assert record_to_json(record)["lat"] == -33.4398233
    assert record_to_json(record)["io"] == {"1": 1, "9": "01ab"}
    assert "gen" not in record_to_json(record)
    assert record_to_json(record._replace(generation=0))["gen"] == 0
    message = decode_frame(repair(frame_bytes("wiki_codec14_nack")))
    assert frame_to_json(message) == {
        "codec": "14",
        "type": 0x11,
        "imei": "352093081452468",
        "text": "",
        "hex": "",
    }
    assert frame_to_json(Message("13", 6, b"\xff", None, 0))["ts"] == 0
    with pytest.raises(TypeError):
        frame_to_json(RECORD)


@pytest.mark.parametrize(
    "imei", ["١٢٣٤٥٦٧٨٩٠١٢٣٤٥", "35209308145225", "3520930814522510", 352093081452251]
)
def test_encoders_refuse_what_is_not_15_ascii_digits(imei):
    for encode in (
        lambda: encode_login(imei),
        lambda: encode_message("14", 0x05, b"getver", imei=imei),
        lambda: encode_udp("8", [], imei, 0xCAFE, 1),
    ):
        with pytest.raises(CodecError, match="15 decimal digits"):
            encode()
    assert not is_imei(imei)
