"""Every frame of the vector corpus, with what its sources state about it.

Test ids are vector ids.  Known-bad frames (CRC errata, wrong lengths, codecs
out of scope, traccar's non-standard "extended" Codec 8) assert the error they
must raise.
"""

import json
import struct
from pathlib import Path

import pytest

from teltonika.codec import (
    AVLPacket,
    CRCMismatch,
    FrameKind,
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
    encode_login_reply,
    encode_message,
    encode_udp,
    encode_udp_ack,
    next_frame,
)

VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "teltonika_vectors.json").read_text()
)
BY_ID = {vector["id"]: vector for vector in VECTORS}


def frame_bytes(vector_id):
    return bytes.fromhex(BY_ID[vector_id]["hex"])


def is_valid_avl(vector, kind):
    """A TCP AVL frame the sources agree is well-formed and standard."""
    return (
        vector["kind"] == kind
        and vector.get("crc_ok") is True
        and vector.get("length_ok") is True
        and vector.get("structure_ok") is True
        and "NON-STANDARD" not in vector.get("notes", "")
    )


def repair(frame):
    """The frame with its length and CRC fields recomputed from its bytes, to
    check what a source states about the records of a frame whose envelope
    is known to be wrong."""
    data = frame[8:-4]
    return (
        b"\x00" * 4
        + struct.pack(">I", len(data))
        + data
        + struct.pack(">I", crc16(data))
    )


def record_io(record):
    """IO ids as strings -> values, NX values as hex, like the vectors."""
    io = {str(io_id): value for io_id, value in record.io.items()}
    io.update((str(io_id), value.hex()) for io_id, value in record.nx.items())
    return io


_RECORD_FIELDS = {
    "timestamp_ms": lambda record: record.timestamp,
    # The source states whole seconds.
    "timestamp_s": lambda record: record.timestamp // 1000,
    "priority": lambda record: record.priority,
    "lon_e7": lambda record: record.lon,
    "lat_e7": lambda record: record.lat,
    # The source compares these approximately; our decode matches exactly.
    "lon_e7_approx": lambda record: record.lon,
    "lat_e7_approx": lambda record: record.lat,
    "altitude": lambda record: record.altitude,
    "angle": lambda record: record.angle,
    "satellites": lambda record: record.satellites,
    "speed": lambda record: record.speed,
    "event_io_id": lambda record: record.event_id,
    "event_id": lambda record: record.event_id,
    "generation_type": lambda record: record.generation,
    "n_total": lambda record: len(record.io) + len(record.nx),
}


def assert_records_match(records, stated):
    """Every value a source states about a record equals ours exactly.

    Sources list records in wire order; some state only the first few
    records, some only some IO elements of a record (their ``io`` is then a
    subset of ours, and an empty ``io`` states nothing).
    """
    assert len(stated) <= len(records)
    for number, (record, expected) in enumerate(zip(records, stated, strict=False), 1):
        for key, value in expected.items():
            if key == "io":
                ours = record_io(record)
                assert {io_id: ours.get(io_id) for io_id in value} == value, number
            else:
                assert _RECORD_FIELDS[key](record) == value, (number, key)


def _packet(vector):
    frame = bytes.fromhex(vector["hex"])
    if vector["kind"].startswith("udp_"):
        return decode_udp(frame)
    return decode_frame(frame)


def _check_avl(vector, packet):
    expect = vector.get("expect") or {}
    if "records" in expect:
        assert len(packet.records) == expect["records"]
    assert_records_match(packet.records, expect.get("records_detail", []))
    if "crc" in expect:
        frame = bytes.fromhex(vector["hex"])
        assert crc16(frame[8:-4]) == int(expect["crc"], 16)
        assert frame[-4:] == struct.pack(">I", int(expect["crc"], 16))


_AVL_CODECS = {"codec8": "8", "codec8e": "8E", "codec16": "16"}


def check_tcp_avl(vector):
    frame = bytes.fromhex(vector["hex"])
    if "NON-STANDARD" in vector.get("notes", ""):
        # traccar's "extended" Codec 8: an extra 16-byte group per record.
        with pytest.raises(MalformedFrame, match="total IO count"):
            decode_frame(frame)
        return
    if vector["length_ok"] is False:
        with pytest.raises(MalformedFrame, match="data length at offset 4"):
            decode_frame(frame)
        if "records" not in (vector.get("expect") or {}):
            return
        # What the source states about the records still holds.
        frame = repair(frame)
    elif vector["crc_ok"] is False:
        with pytest.raises(CRCMismatch, match="CRC field at offset"):
            decode_frame(frame)
        # Only the CRC is wrong: with it recomputed the frame decodes.
        frame = repair(frame)
    packet = decode_frame(frame)
    assert isinstance(packet, AVLPacket)
    assert packet.codec == _AVL_CODECS[vector["kind"]]
    assert decode_frame(encode_avl(packet.codec, packet.records)) == packet
    _check_avl(vector, packet)
    _check_traccar_attribute(vector, packet)


def _check_traccar_attribute(vector, packet):
    """traccar states values it derives from IO elements; check the raw
    element each is derived from (interpreting IO ids is not the codec's
    business)."""
    stated = (vector.get("expect") or {}).get("traccar_attribute")
    if stated is None:
        return
    record = packet.records[0]
    if "eyeTemp1" in stated:
        # EYE sensor temperature: signed 16-bit IO 10800 in 0.01 degrees.
        raw = struct.unpack(">h", struct.pack(">H", record.io[10800]))[0]
        assert f"{raw / 100:.2f}" == stated["eyeTemp1"]
    elif "tag1Battery" in stated:
        # BLE tag parameter 0x0e (battery voltage, mV) ends NX element 10831.
        assert record.nx[10831][-4:] == bytes.fromhex("0e02") + struct.pack(
            ">H", int(stated["tag1Battery"])
        )
    elif "tag1Voltage" in stated:
        # traccar derives it from the 73-byte BLE sensor element 548 the
        # notes describe; the codec hands that element over whole.
        assert len(record.nx[548]) == 73
    else:
        raise AssertionError(f"no check for {stated}")


def check_message(vector):
    frame = bytes.fromhex(vector["hex"])
    kind = vector["kind"]
    expect = vector.get("expect") or {}
    if vector["length_ok"] is False:
        with pytest.raises(MalformedFrame, match="data length at offset 4"):
            decode_frame(frame)
        return
    if vector["crc_ok"] is False:
        with pytest.raises(CRCMismatch, match="CRC field at offset"):
            decode_frame(frame)
        frame = repair(frame)
    if vector["structure_ok"] is False:
        # traccar_14: a Codec 13 size field that leaves out the timestamp.
        with pytest.raises(MalformedFrame, match="size field at offset 11"):
            decode_frame(frame)
        return
    message = decode_frame(frame)
    assert isinstance(message, Message)
    assert message.codec == kind[len("codec") :].split("_")[0]
    # Every frame, command or answer, is reproduced byte for byte.
    assert encode_message(*message) == frame
    if "type" in expect:
        assert message.type == int(expect["type"], 16)
    if "text" in expect:
        assert message.payload == expect["text"].encode()
    if "text_prefix" in expect:
        assert message.payload.startswith(expect["text_prefix"].encode())
    if "payload_hex" in expect:
        assert message.payload.hex() == expect["payload_hex"]
    if "imei" in expect:
        assert message.imei == expect["imei"]
    if "size" in expect:
        assert len(message.payload) == expect["size"]
    if "quantity1" in expect:
        assert (frame[9], frame[-5]) == (expect["quantity1"], expect["quantity2"])
    if "crc" in expect:
        assert crc16(frame[8:-4]) == int(expect["crc"], 16)
    if "timestamp_s" in expect:
        assert message.timestamp == expect["timestamp_s"] * 1000
    return message


def check_udp(vector):
    datagram = bytes.fromhex(vector["hex"])
    expect = vector.get("expect") or {}
    if "packet_length" in expect:
        assert struct.unpack_from(">H", datagram)[0] == expect["packet_length"]
    if vector["length_ok"] is False:
        with pytest.raises(MalformedFrame, match="length field at offset 0"):
            decode_udp(datagram)
        datagram = struct.pack(">H", len(datagram) - 2) + datagram[2:]
        if expect.get("must_fail"):
            # Number of data 1 = 7 with one record: still malformed.
            with pytest.raises(MalformedFrame, match="number of data 1"):
                decode_udp(datagram)
            return
    elif vector["structure_ok"] is False:
        # A 2019 wiki datagram labelled 8E whose body is Codec 8.
        with pytest.raises(MalformedFrame, match="record 1: IO group"):
            decode_udp(datagram)
        imei_end = 8 + 15
        assert datagram[imei_end] == 0x8E
        datagram = datagram[:imei_end] + b"\x08" + datagram[imei_end + 1 :]
        packet = decode_udp(datagram)
        assert len(packet.records) == expect["records_when_read_as_codec8"]
    packet = decode_udp(datagram)
    assert packet.codec == _AVL_CODECS[vector["kind"][len("udp_") :]]
    if "codec_id" in expect:
        assert datagram[8 + 15] == int(expect["codec_id"], 16)
    if "packet_id" in expect:
        assert packet.packet_id == int(expect["packet_id"], 16)
    for key in ("avl_packet_id", "imei"):
        if key in expect:
            assert getattr(packet, key) == expect[key]
    _check_avl(vector, packet)
    if "server_ack" in expect:
        ack = encode_udp_ack(
            packet.packet_id, packet.avl_packet_id, len(packet.records)
        )
        assert ack.hex() == expect["server_ack"]
    again = encode_udp(
        packet.codec,
        packet.records,
        packet.imei,
        packet.packet_id,
        packet.avl_packet_id,
    )
    assert decode_udp(again) == packet


def check_udp_ack(vector):
    expect = vector["expect"]
    ack = encode_udp_ack(
        int(expect["packet_id"], 16), expect["avl_packet_id"], expect["accepted"]
    )
    published = bytes.fromhex(vector["hex"])
    assert published[:2] == struct.pack(">H", expect["length"])
    if expect.get("not_usable_byte") == "0x00":
        # A historic wiki revision wrote 0x00 where current ones write 0x01.
        assert published[4] == 0x00
        assert ack == published[:4] + b"\x01" + published[5:]
    else:
        assert ack == published


def check_stream(vector):
    """Logins, keep-alives and the server's one-byte and 4-byte answers."""
    data = bytes.fromhex(vector["hex"])
    kind = vector["kind"]
    expect = vector["expect"]
    if kind == "imei":
        assert next_frame(data) == (FrameKind.LOGIN, len(data))
        assert decode_login(data) == expect["imei"]
        assert encode_login(expect["imei"]) == data
    elif kind == "ping":
        assert next_frame(data) == (FrameKind.KEEPALIVE, 1)
        assert expect["reply"] is None
    elif kind == "ping_then_imei":
        frames = []
        while data:
            _, size = next_frame(data)
            frames.append(data[:size].hex())
            data = data[size:]
        assert frames == expect["frames"]
    elif kind in ("imei_accept", "imei_reject"):
        assert encode_login_reply(expect["accepted"]) == data
    elif kind == "tcp_ack":
        assert encode_ack(expect["accepted"]) == data
    else:
        raise AssertionError(kind)


def check_unsupported(vector):
    frame = bytes.fromhex(vector["hex"])
    if vector["length_ok"] is False:
        with pytest.raises(MalformedFrame, match="data length at offset 4"):
            decode_frame(frame)
        frame = repair(frame)
    with pytest.raises(UnsupportedCodec, match=r"codec id 0x0[7f] at offset 8"):
        decode_frame(frame)


_CHECKS = {
    "codec8": check_tcp_avl,
    "codec8e": check_tcp_avl,
    "codec16": check_tcp_avl,
    "codec12_cmd": check_message,
    "codec12_resp": check_message,
    "codec12_camera": check_message,
    "codec14_cmd": check_message,
    "codec14_ack": check_message,
    "codec14_nack": check_message,
    "codec13": check_message,
    "codec15": check_unsupported,
    "codec7_gh3000": check_unsupported,
    "udp_codec8": check_udp,
    "udp_codec8e": check_udp,
    "udp_codec16": check_udp,
    "udp_ack": check_udp_ack,
    "imei": check_stream,
    "ping": check_stream,
    "ping_then_imei": check_stream,
    "imei_accept": check_stream,
    "imei_reject": check_stream,
    "tcp_ack": check_stream,
}


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_vector(vector):
    _CHECKS[vector["kind"]](vector)


def test_every_vector_kind_has_a_check():
    assert {vector["kind"] for vector in VECTORS} == set(_CHECKS)


# Vectors whose outcome is a decision of ours, asserted beyond the generic
# checks above.


def test_codec13_with_8_byte_timestamp_reads_as_current_4_byte_layout():
    """The older 8-byte-timestamp Codec 13 examples are consistent frames, so
    they decode; with the current spec's layout their first 4 bytes are the
    seconds and the rest is payload."""
    for vector_id in ("wiki_codec13_8byte_variant", "danieljvsa_codec13_8byte_type06"):
        message = decode_frame(frame_bytes(vector_id))
        assert message.timestamp == 0x0000016C * 1000
        assert message.payload == bytes.fromhex("0a81c320") + b"getinfo"


def test_codec13_current_device_frame():
    message = decode_frame(frame_bytes("traccar_5"))
    assert message == Message(
        "13", 6, b"GTSL|6|1|0|12749884|1|\r\n", None, 0x642B3AD1 * 1000
    )
    # traccar's driverUniqueId is the 5th |-field of the text.
    assert message.payload.split(b"|")[4] == b"12749884"


def test_codec14_nack_names_the_devices_own_imei():
    message = decode_frame(repair(frame_bytes("wiki_codec14_nack")))
    assert message == Message("14", 0x11, b"", "352093081452468")


def test_camera_frame_decodes_generically():
    message = decode_frame(frame_bytes("traccar_48"))
    assert message == Message("12", 0x0D, b"\x00")


def test_truncated_crc_field_is_a_length_error():
    with pytest.raises(MalformedFrame, match="should be 179 bytes; it is 177"):
        decode_frame(frame_bytes("traccar_33"))


def test_zero_length_field_is_rejected():
    with pytest.raises(MalformedFrame, match="says 0 bytes"):
        decode_frame(frame_bytes("traccar_28"))
