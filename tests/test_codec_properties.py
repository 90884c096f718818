"""Properties of the codec over generated values and bytes (hypothesis)."""

import contextlib
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_codec_vectors import VECTORS, is_valid_avl

from teltonika.codec import (
    AVLPacket,
    AVLRecord,
    CodecError,
    CRCMismatch,
    FrameKind,
    Message,
    UDPPacket,
    crc16,
    decode_frame,
    decode_login,
    decode_udp,
    encode_avl,
    encode_login,
    encode_message,
    encode_udp,
    next_frame,
)

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
i32 = st.integers(-(2**31), 2**31 - 1)
io_values = st.one_of(
    st.integers(0, 0xFF), st.integers(0, 0xFFFFFFFF), st.integers(0, 2**64 - 1)
)


@st.composite
def records(draw, codec):
    io_id = u8 if codec == "8" else u16
    return AVLRecord(
        timestamp=draw(st.integers(0, 2**64 - 1)),
        priority=draw(u8),
        lon=draw(i32),
        lat=draw(i32),
        altitude=draw(st.integers(-(2**15), 2**15 - 1)),
        angle=draw(u16),
        satellites=draw(u8),
        speed=draw(u16),
        event_id=draw(io_id),
        io=draw(st.dictionaries(io_id, io_values, max_size=12)),
        nx=draw(st.dictionaries(u16, st.binary(max_size=40), max_size=3))
        if codec == "8E"
        else AVLRecord._field_defaults["nx"],
        generation=draw(st.integers(0, 7)) if codec == "16" else None,
    )


@st.composite
def avl_batches(draw):
    codec = draw(st.sampled_from(["8", "8E", "16"]))
    return codec, tuple(draw(st.lists(records(codec), max_size=5)))


imeis = st.text("0123456789", min_size=15, max_size=15)


@st.composite
def messages(draw):
    codec = draw(st.sampled_from(["12", "13", "14"]))
    return Message(
        codec,
        draw(u8),
        draw(st.binary(max_size=300)),
        draw(imeis) if codec == "14" else None,
        draw(st.integers(0, 2**32 - 1)) * 1000 if codec == "13" else None,
    )


@st.composite
def data_frames(draw):
    """Any valid TCP data frame: AVL or Codec 12/13/14."""
    if draw(st.booleans()):
        return encode_avl(*draw(avl_batches()))
    return encode_message(*draw(messages()))


CORPUS_FRAMES = [
    bytes.fromhex(vector["hex"])
    for vector in VECTORS
    if any(is_valid_avl(vector, kind) for kind in ("codec8", "codec8e", "codec16"))
]


@SETTINGS
@given(avl_batches())
def test_tcp_avl_round_trip(batch):
    codec, batch_records = batch
    assert decode_frame(encode_avl(codec, batch_records)) == AVLPacket(
        codec, batch_records
    )


@SETTINGS
@given(avl_batches(), st.data())
def test_tcp_avl_round_trip_with_chosen_widths(batch, data):
    codec, batch_records = batch
    widths = {}
    for record in batch_records:
        for io_id, value in record.io.items():
            fits = [w for w in (1, 2, 4, 8) if value < 1 << (8 * w)]
            widths[io_id] = max(widths.get(io_id, 1), data.draw(st.sampled_from(fits)))
    frame = encode_avl(codec, batch_records, widths)
    assert decode_frame(frame) == AVLPacket(codec, batch_records)


@SETTINGS
@given(avl_batches(), imeis, u16, u8)
def test_udp_round_trip(batch, imei, packet_id, avl_packet_id):
    codec, batch_records = batch
    datagram = encode_udp(codec, batch_records, imei, packet_id, avl_packet_id)
    assert decode_udp(datagram) == UDPPacket(
        packet_id, avl_packet_id, imei, codec, batch_records
    )


@SETTINGS
@given(messages())
def test_message_round_trip(message):
    assert decode_frame(encode_message(*message)) == message


@SETTINGS
@given(data_frames(), st.binary(max_size=20))
def test_framer_finds_the_whole_frame_and_nothing_before(frame, following):
    for end in range(len(frame)):
        assert next_frame(frame[:end]) == (FrameKind.NEED_MORE, 0)
    assert next_frame(frame + following) == (FrameKind.DATA, len(frame))


def test_framer_needs_more_for_every_prefix_of_corpus_frames():
    for frame in CORPUS_FRAMES:
        for end in range(len(frame)):
            assert next_frame(bytearray(frame[:end])) == (FrameKind.NEED_MORE, 0)
        assert next_frame(bytearray(frame)) == (FrameKind.DATA, len(frame))


@SETTINGS
@given(imeis)
def test_login_prefixes_need_more(imei):
    login = encode_login(imei)
    for end in range(len(login)):
        assert next_frame(login[:end]) == (FrameKind.NEED_MORE, 0)
    assert next_frame(login) == (FrameKind.LOGIN, len(login))
    assert decode_login(login) == imei


def _flip(frame, index, delta):
    return frame[:index] + bytes([frame[index] ^ delta]) + frame[index + 1 :]


@SETTINGS
@given(data_frames(), st.data())
def test_any_single_byte_change_under_the_crc_is_caught(frame, data):
    index = data.draw(st.integers(8, len(frame) - 5))
    delta = data.draw(st.integers(1, 0xFF))
    try:
        decode_frame(_flip(frame, index, delta))
    except CRCMismatch:
        return
    raise AssertionError(f"change at {index} went unnoticed")


def test_every_single_byte_change_in_corpus_frames_is_caught():
    for frame in CORPUS_FRAMES:
        for index in range(8, len(frame) - 4):
            for delta in (0x01, 0x80, 0xFF):
                try:
                    decode_frame(_flip(frame, index, delta))
                except CRCMismatch:
                    continue
                raise AssertionError(f"change at {index} went unnoticed")


def _only_codec_errors(function, data):
    with contextlib.suppress(CodecError):
        function(data)


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_codec_errors(data):
    for function in (next_frame, decode_frame, decode_udp, decode_login):
        _only_codec_errors(function, data)


@st.composite
def enveloped_bodies(draw):
    """Random bodies behind a valid envelope and CRC, so decoding reaches the
    record and message parsers instead of stopping at the CRC."""
    codec_id = draw(st.sampled_from([0x08, 0x8E, 0x10, 0x0C, 0x0D, 0x0E, 0x07]))
    body = bytes([codec_id]) + draw(st.binary(min_size=2, max_size=300))
    return (
        b"\0\0\0\0"
        + struct.pack(">I", len(body))
        + body
        + struct.pack(">I", crc16(body))
    )


@SETTINGS
@given(enveloped_bodies())
def test_random_bodies_with_valid_crc_raise_only_codec_errors(frame):
    _only_codec_errors(decode_frame, frame)
    _only_codec_errors(next_frame, frame)


@SETTINGS
@given(avl_batches(), st.data())
def test_corrupted_records_raise_only_codec_errors(batch, data):
    """Valid AVL data with bytes changed or cut, CRC recomputed."""
    body = encode_avl(*batch)[8:-4]
    index = data.draw(st.integers(0, len(body) - 1))
    if data.draw(st.booleans()):
        body = body[:index] + bytes([data.draw(u8)]) + body[index + 1 :]
    else:
        body = body[:index] + body[index + 1 :]
    frame = (
        b"\0\0\0\0"
        + struct.pack(">I", len(body))
        + body
        + struct.pack(">I", crc16(body))
    )
    _only_codec_errors(decode_frame, frame)
    rest = struct.pack(">HBBH", 1, 1, 1, 15) + b"123456789012345" + body
    datagram = struct.pack(">H", len(rest)) + rest
    _only_codec_errors(decode_udp, datagram)
