"""teltonika-decode, called as main() with arguments or stdin."""

import io
import json
import subprocess
import sys

from test_codec_vectors import frame_bytes

from teltonika.codec.cli import main


def run(*args, stdin=None):
    out = io.StringIO()
    status = main(
        list(args), stdin=io.StringIO(stdin) if stdin is not None else None, stdout=out
    )
    return status, [json.loads(line) for line in out.getvalue().splitlines()]


def hex_of(vector_id):
    return frame_bytes(vector_id).hex()


def test_avl_frame_prints_contract_field_names():
    status, [entry] = run(hex_of("wiki_codec16_ex"))
    assert status == 0
    assert entry["codec"] == "16"
    assert entry["records"][0] == {
        "ts": 1562760414000,
        "priority": 0,
        "lat": 0.0,
        "lon": 0.0,
        "alt": 0,
        "angle": 0,
        "sat": 0,
        "speed": 0,
        "event": 11,
        "gen": 5,
        "io": {"1": 0, "3": 0, "11": 39, "66": 22074},
    }


def test_coordinates_in_degrees_and_nx_as_hex():
    status, [entry] = run(hex_of("timelord_codec8e_real_negative_lon"))
    assert status == 0
    record = entry["records"][0]
    assert (record["lon"], record["lat"]) == (-100.3628933, 20.579835)
    assert record["io"]["891"] == "444442453539304444423538"
    assert "gen" not in record


def test_udp_datagram():
    status, [entry] = run(hex_of("wiki_udp_codec8"))
    assert status == 0
    assert {key: entry[key] for key in entry if key != "records"} == {
        "codec": "8",
        "transport": "udp",
        "imei": "352093086403655",
        "packet_id": 0xCAFE,
        "avl_packet_id": 5,
    }
    assert len(entry["records"]) == 1


def test_messages():
    status, entries = run(
        hex_of("wiki_codec14_getver_cmd"),
        hex_of("alim_codec13_4byte_ts"),
        hex_of("traccar_17"),
    )
    assert status == 0
    assert entries == [
        {
            "codec": "14",
            "type": 5,
            "imei": "352093081452251",
            "text": "getver",
            "hex": "676574766572",
        },
        {
            "codec": "13",
            "type": 6,
            "ts": 176276256000,
            "text": "getinfo",
            "hex": "676574696e666f",
        },
        {
            "codec": "12",
            "type": 6,
            "text": "\x01\x03\x00\x01\x00\x15\ufffd\ufffd",
            "hex": "010300010015d5c5",
        },
    ]


def test_keepalive_and_login_from_stdin_blank_lines_ignored():
    stdin = "\n" + hex_of("traccar_ping_then_imei") + "\n   \n"
    assert run(stdin=stdin) == (0, [{"keepalive": True}, {"login": "123456789012345"}])


def test_spaces_inside_hex_are_ignored():
    assert run("000f 3132333435 3637383930 3132333435") == (
        0,
        [{"login": "123456789012345"}],
    )


def test_errors_are_reported_and_the_tool_goes_on():
    status, entries = run(
        hex_of("aag_codec8_bad_crc"),
        "not hex",
        hex_of("wiki_codec15_hello"),
        "00000000" + "00010001" + "08",
        hex_of("uro_fm4200_classic"),
        hex_of("wiki_codec8_ex1"),
    )
    assert status == 1
    assert [entry.get("error") for entry in entries] == [
        "crc_mismatch",
        "malformed",
        "unsupported_codec",
        "too_large",
        "malformed",
        None,
    ]
    assert entries[0]["detail"] == (
        "CRC field at offset 124 is 0x0000b421, the CRC of bytes 8-123 is 0xb42a"
    )
    assert entries[1]["detail"] == (
        "not hexadecimal: 'nothex' (expected pairs of the digits 0-9 and a-f)"
    )
    assert entries[3]["detail"] == (
        "data length at offset 4 is 65537 bytes, the limit is 65536"
    )
    assert entries[4]["detail"] == (
        "data length at offset 4 says 254 bytes, so the frame should be "
        "266 bytes; it is 179"
    )


def test_stream_that_ends_inside_a_frame():
    status, entries = run("ff000f3132")
    assert status == 1
    assert entries == [
        {"keepalive": True},
        {
            "error": "malformed",
            "detail": "the line ends inside a frame that starts at offset 1",
        },
    ]


def test_bad_logins():
    status, entries = run("000e3132333435363738393031323334", "0003414243")
    assert status == 1
    assert entries[0] == {
        "error": "malformed",
        "detail": "the IMEI at offset 2 must be 15 ASCII digits, got b'12345678901234'",
    }
    assert entries[1] == {
        "error": "malformed",
        "detail": "the IMEI at offset 2 must be 15 ASCII digits, got b'ABC'",
    }


def test_python_dash_m_runs_the_tool():
    result = subprocess.run(
        [sys.executable, "-m", "teltonika.codec", hex_of("tcp_ack_1")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"] == "malformed"
