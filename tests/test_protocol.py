"""The device connection, on a StringTransport and a task.Clock: no reactor."""

import gc
import struct

from protocol_fakes import (
    IMEI,
    OTHER_IMEI,
    connect,
    logged_in,
    make_factory,
    record,
    sample_metric,
)
from twisted.internet import defer
from twisted.logger import Logger

from teltonika import codec
from teltonika.commands import Command, encode_command
from teltonika.protocol import TeltonikaProtocol


def frame_of(*records, codec_name="8E"):
    return codec.encode_avl(codec_name, list(records))


def with_bad_crc(frame):
    return frame[:-1] + bytes([frame[-1] ^ 0x01])


# Login -------------------------------------------------------------------


def test_allowed_login_is_accepted_and_registered():
    factory = make_factory()
    protocol, transport = connect(factory)
    protocol.dataReceived(codec.encode_login(IMEI))
    assert transport.value() == b"\x01"
    assert transport.connected
    assert factory.registry.events == [("register", IMEI)]
    assert factory.devices == {IMEI: protocol}
    assert sample_metric(factory, "teltonika_logins_total", result="accepted") == 1


def test_login_not_on_allowlist_gets_00_and_is_closed():
    factory = make_factory()
    protocol, transport = connect(factory)
    protocol.dataReceived(codec.encode_login("123456789012345"))
    assert transport.value() == b"\x00"
    assert not transport.connected
    assert factory.registry.events == []
    assert sample_metric(factory, "teltonika_logins_total", result="refused") == 1


def test_authority_failure_refuses_the_login():
    factory = make_factory()
    factory.authority.pending = defer.fail(ConnectionError("Redis is down"))
    protocol, transport = connect(factory)
    protocol.dataReceived(codec.encode_login(IMEI))
    assert transport.value() == b"\x00"
    assert not transport.connected


def test_authority_that_never_answers_is_refused_at_the_login_timeout():
    factory = make_factory()
    factory.authority.pending = defer.Deferred()
    protocol, transport = connect(factory)
    protocol.dataReceived(codec.encode_login(IMEI))
    factory.clock.advance(29)
    assert transport.value() == b"" and transport.connected
    factory.clock.advance(1)
    assert transport.value() == b"\x00"
    assert not transport.connected
    factory.authority.pending.callback(True)  # a late answer changes nothing
    assert transport.value() == b"\x00"
    assert factory.devices == {}


def test_no_login_within_the_timeout_closes_the_socket():
    factory = make_factory()
    _, transport = connect(factory)
    factory.clock.advance(30)
    assert transport.value() == b"\x00"
    assert not transport.connected


def test_login_trickled_one_byte_per_second_is_accepted_in_time():
    factory = make_factory()
    protocol, transport = connect(factory)
    for byte in codec.encode_login(IMEI):
        protocol.dataReceived(bytes([byte]))
        factory.clock.advance(1)
    assert transport.value() == b"\x01"
    assert transport.connected


def test_trickling_does_not_extend_the_login_deadline():
    factory = make_factory(login_timeout=10.0)
    protocol, transport = connect(factory)
    for byte in codec.encode_login(IMEI)[:12]:
        protocol.dataReceived(bytes([byte]))
        factory.clock.advance(1)
    assert transport.value() == b"\x00"
    assert not transport.connected


def test_garbage_before_login_is_refused():
    factory = make_factory()
    protocol, transport = connect(factory)
    protocol.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
    assert transport.value() == b"\x00"
    assert not transport.connected
    assert sample_metric(factory, "teltonika_bad_frames_total", reason="malformed") == 1


def test_login_length_zero_is_refused():
    factory = make_factory()
    protocol, transport = connect(factory)
    protocol.dataReceived(b"\x00\x00\x01\x02")
    assert transport.value() == b"\x00"
    assert not transport.connected


def test_login_length_65535_is_refused():
    # FF FF reads as two keep-alive bytes; what follows is then no login.
    factory = make_factory()
    protocol, transport = connect(factory)
    protocol.dataReceived(b"\xff\xff" + IMEI.encode())
    assert transport.value() == b"\x00"
    assert not transport.connected


def test_login_length_over_64_is_refused_before_buffering_it():
    factory = make_factory()
    protocol, transport = connect(factory)
    protocol.dataReceived(b"\x7f\xff" + b"1" * 10)
    assert transport.value() == b"\x00"
    assert not transport.connected


def test_non_digit_imei_is_refused():
    factory = make_factory()
    protocol, transport = connect(factory)
    protocol.dataReceived(struct.pack(">H", 15) + b"35630704244101X")
    assert transport.value() == b"\x00"
    assert not transport.connected


def test_data_frame_before_login_is_refused():
    factory = make_factory()
    protocol, transport = connect(factory)
    protocol.dataReceived(frame_of(record()))
    assert transport.value() == b"\x00"
    assert not transport.connected
    assert factory.telemetry.calls == []


def test_keepalive_bytes_are_ignored_even_glued_to_a_login():
    factory = make_factory()
    protocol, transport = connect(factory)
    protocol.dataReceived(b"\xff" + codec.encode_login(IMEI) + b"\xff")
    assert transport.value() == b"\x01"
    assert transport.connected


def test_second_login_on_a_logged_in_socket_closes_it():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    protocol.dataReceived(codec.encode_login(IMEI))
    assert transport.value() == b""
    assert not transport.connected


# Data frames -------------------------------------------------------------


def test_ack_is_written_only_after_the_frame_is_stored():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    frame = frame_of(record(1), record(2), record(3))
    protocol.dataReceived(frame)
    assert transport.value() == b""
    assert transport.producerState == "paused"
    imei, packet, stored_frame, _, _ = factory.telemetry.calls[0]
    assert (imei, stored_frame) == (IMEI, frame)
    assert packet.records == (record(1), record(2), record(3))
    factory.telemetry.finish()
    assert transport.value() == b"\x00\x00\x00\x03"
    assert transport.producerState == "producing"
    assert sample_metric(factory, "teltonika_records_total") == 3


def test_frames_in_one_read_are_stored_one_at_a_time_in_order():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    first, second = frame_of(record(1)), frame_of(record(2), record(3))
    protocol.dataReceived(first + second)
    assert len(factory.telemetry.calls) == 1
    factory.telemetry.finish()
    assert transport.value() == b"\x00\x00\x00\x01"
    assert factory.telemetry.calls[0][2] == second
    factory.telemetry.finish()
    assert transport.value() == b"\x00\x00\x00\x01\x00\x00\x00\x02"


def test_a_frame_split_across_reads_byte_by_byte_is_stored_once():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    frame = frame_of(record(1, generation=7), codec_name="16")
    for byte in frame:
        protocol.dataReceived(bytes([byte]))
    assert len(factory.telemetry.calls) == 1
    factory.telemetry.finish()
    assert transport.value() == b"\x00\x00\x00\x01"


def test_duplicate_frame_is_acked_without_counting_records():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    protocol.dataReceived(frame_of(record(1)))
    factory.telemetry.finish(False)
    assert transport.value() == b"\x00\x00\x00\x01"
    assert sample_metric(factory, "teltonika_records_total") == 0
    assert sample_metric(factory, "teltonika_duplicate_frames_total") == 1


def test_zero_record_frame_is_acked_with_zero():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    protocol.dataReceived(codec.encode_avl("8", []))
    factory.telemetry.finish()
    assert transport.value() == b"\x00\x00\x00\x00"


def test_crc_mismatch_gets_no_ack_and_the_resend_is_stored():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    frame = frame_of(record(1))
    protocol.dataReceived(with_bad_crc(frame))
    assert transport.value() == b""
    assert transport.connected
    assert factory.telemetry.calls == []
    assert sample_metric(factory, "teltonika_crc_errors_total") == 1
    protocol.dataReceived(frame)
    factory.telemetry.finish()
    assert transport.value() == b"\x00\x00\x00\x01"


def test_three_crc_mismatches_in_a_row_close_the_socket():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    bad = with_bad_crc(frame_of(record(1)))
    protocol.dataReceived(bad + bad)
    assert transport.connected
    protocol.dataReceived(bad)
    assert not transport.connected
    assert transport.value() == b""


def test_a_good_frame_resets_the_crc_error_count():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    good, bad = frame_of(record(1)), with_bad_crc(frame_of(record(2)))
    protocol.dataReceived(bad + bad + good)
    factory.telemetry.finish()
    protocol.dataReceived(bad + bad)
    assert transport.connected


def test_frame_declaring_4_gib_closes_the_socket_at_once():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    protocol.dataReceived(b"\x00\x00\x00\x00\xff\xff\xff\xff" + b"\x08")
    assert not transport.connected
    assert transport.value() == b""
    assert sample_metric(factory, "teltonika_bad_frames_total", reason="too_large") == 1


def test_frame_over_max_frame_closes_the_socket():
    factory = make_factory(max_frame=100)
    protocol, transport = logged_in(factory)
    protocol.dataReceived(frame_of(*[record(n) for n in range(10)]))
    assert not transport.connected


def test_unsupported_codec_closes_the_socket():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    body = b"\x07\x00\x00"
    crc = codec.crc16(body)
    frame = b"\x00" * 4 + struct.pack(">I", len(body)) + body + struct.pack(">I", crc)
    protocol.dataReceived(frame)
    assert not transport.connected
    assert (
        sample_metric(factory, "teltonika_bad_frames_total", reason="unsupported_codec")
        == 1
    )


def test_garbage_after_login_closes_the_socket_without_ack():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    protocol.dataReceived(b"\x00\x00\x12\x34garbage")
    assert not transport.connected
    assert transport.value() == b""


def test_store_failure_means_no_ack_and_a_closed_socket():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    protocol.dataReceived(frame_of(record(1)))
    factory.telemetry.fail(ConnectionError("Redis is down"))
    assert transport.value() == b""
    assert not transport.connected
    assert (
        sample_metric(factory, "teltonika_redis_errors_total", operation="telemetry")
        == 1
    )


def test_truncated_frame_then_disconnect_stores_nothing():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    frame = frame_of(record(1))
    protocol.dataReceived(frame[:-5])
    transport.loseConnection()
    assert factory.telemetry.calls == []
    assert factory.devices == {}
    assert factory.registry.events[-1] == ("unregister", IMEI)


def test_device_messages_are_kept_not_acked_and_the_socket_stays_open():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    message = codec.encode_message(
        "13", 0x06, b"GTSL|6|1|0|1|\r\n", timestamp=1_680_554_705_000
    )
    protocol.dataReceived(message)
    [(imei, decoded)] = factory.messages.stored
    assert imei == IMEI
    assert (decoded.codec, decoded.payload) == ("13", b"GTSL|6|1|0|1|\r\n")
    assert transport.value() == b""
    assert transport.connected


def test_silent_device_is_closed_after_the_idle_timeout():
    factory = make_factory(idle_timeout=60.0)
    protocol, transport = logged_in(factory)
    factory.clock.advance(59)
    protocol.dataReceived(b"\xff")
    factory.clock.advance(59)
    assert transport.connected
    factory.clock.advance(1)
    assert not transport.connected


# The factory ---------------------------------------------------------------


def test_newer_login_of_the_same_imei_supersedes_the_older_socket():
    factory = make_factory()
    _, older_transport = logged_in(factory)
    newer, newer_transport = logged_in(factory)
    assert not older_transport.connected
    assert newer_transport.connected
    assert factory.devices == {IMEI: newer}
    # The older socket's end must not delete the newer one's registry entry.
    assert factory.registry.events == [("register", IMEI), ("register", IMEI)]


def test_heartbeat_hooks_list_and_disconnect_devices():
    factory = make_factory()
    _, first = logged_in(factory, IMEI)
    _, second = logged_in(factory, OTHER_IMEI)
    assert sorted(factory.connected_imeis()) == sorted([IMEI, OTHER_IMEI])
    factory.disconnect(OTHER_IMEI, "revoked")
    assert first.connected and not second.connected
    assert factory.connected_imeis() == [IMEI]


def test_close_all_lets_a_frame_being_stored_be_acked_first():
    factory = make_factory()
    busy, busy_transport = logged_in(factory, IMEI)
    _, idle_transport = logged_in(factory, OTHER_IMEI)
    busy.dataReceived(frame_of(record(1)))
    done = factory.close_all(grace=5)
    assert not idle_transport.connected
    assert busy_transport.connected and not done.called
    factory.telemetry.finish()
    assert busy_transport.value() == b"\x00\x00\x00\x01"
    assert not busy_transport.connected
    assert done.called


def test_close_all_aborts_what_is_still_open_after_the_grace_period():
    factory = make_factory()
    busy, busy_transport = logged_in(factory)
    busy.dataReceived(frame_of(record(1)))
    done = factory.close_all(grace=5)
    factory.clock.advance(5)
    assert not busy_transport.connected
    assert done.called


# Commands ------------------------------------------------------------------


def getinfo(imei=IMEI, codec_name="12"):
    return Command(codec_name, b"getinfo", imei)


def answer_frame(text, codec_name="12", imei=None):
    return codec.encode_message(codec_name, 0x06, text, imei=imei)


def outcomes_of(deferred):
    seen = []
    deferred.addCallback(seen.append)
    return seen


def test_command_is_written_and_the_answer_is_its_outcome():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    seen = outcomes_of(protocol.commands.submit(getinfo()))
    assert transport.value() == encode_command(getinfo())
    protocol.dataReceived(answer_frame(b"RTC:2026/12/3"))
    [outcome] = seen
    assert outcome.status == "responded"
    assert outcome.answer.payload == b"RTC:2026/12/3"
    assert factory.messages.stored == []


def test_command_waits_for_the_login():
    factory = make_factory()
    protocol, transport = connect(factory)
    protocol.commands.submit(getinfo())
    assert transport.value() == b""
    protocol.dataReceived(codec.encode_login(IMEI))
    assert transport.value() == b"\x01" + encode_command(getinfo())


def test_ack_goes_out_before_a_command_submitted_while_storing():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    protocol.dataReceived(frame_of(record(1)))
    protocol.commands.submit(getinfo())
    assert transport.value() == b""
    factory.telemetry.finish()
    assert transport.value() == b"\x00\x00\x00\x01" + encode_command(getinfo())


def test_no_command_between_buffered_frames_and_their_acks():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    protocol.commands.submit(getinfo())
    transport.clear()
    protocol.dataReceived(answer_frame(b"ok") + frame_of(record(1)))
    protocol.commands.submit(Command("12", b"getver", IMEI))
    assert transport.value() == b""
    factory.telemetry.finish()
    assert transport.value() == b"\x00\x00\x00\x01" + encode_command(
        Command("12", b"getver", IMEI)
    )


def test_answer_with_no_command_outstanding_is_a_device_message():
    factory = make_factory()
    protocol, _ = logged_in(factory)
    protocol.dataReceived(answer_frame(b"late answer"))
    [(_, message)] = factory.messages.stored
    assert message.payload == b"late answer"


def test_codec_14_nack_fails_the_command():
    factory = make_factory()
    protocol, _ = logged_in(factory)
    seen = outcomes_of(protocol.commands.submit(getinfo(OTHER_IMEI, "14")))
    protocol.dataReceived(codec.encode_message("14", 0x11, b"", imei=IMEI))
    assert [(o.status, o.reason) for o in seen] == [("failed", "nack")]


def test_unanswered_command_times_out_and_the_next_one_goes():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    first = outcomes_of(protocol.commands.submit(getinfo(), timeout_ms=5000))
    protocol.commands.submit(Command("12", b"getver", IMEI))
    transport.clear()
    factory.clock.advance(5)
    assert [(o.status, o.reason) for o in first] == [("failed", "timeout")]
    assert transport.value() == encode_command(Command("12", b"getver", IMEI))


def test_commands_fail_as_disconnected_when_the_socket_closes():
    factory = make_factory()
    protocol, transport = logged_in(factory)
    written = outcomes_of(protocol.commands.submit(getinfo()))
    queued = outcomes_of(protocol.commands.submit(getinfo()))
    transport.loseConnection()
    assert [o.reason for o in written + queued] == ["disconnected", "disconnected"]


def test_commands_fail_as_superseded_when_a_newer_login_replaces_the_socket():
    factory = make_factory()
    older, _ = logged_in(factory)
    seen = outcomes_of(older.commands.submit(getinfo()))
    logged_in(factory)
    assert [o.reason for o in seen] == ["superseded"]


def test_commands_fail_as_shutdown_when_the_server_stops():
    factory = make_factory()
    protocol, _ = logged_in(factory)
    seen = outcomes_of(protocol.commands.submit(getinfo()))
    factory.close_all(grace=5)
    assert [o.reason for o in seen] == ["shutdown"]


def test_a_closed_connection_leaves_no_reference_cycle(monkeypatch):
    # The server tunes the collector to run rarely: a connection caught in a
    # reference cycle would stay in memory until a full collection.  With
    # DEBUG_SAVEALL whatever only the collector can free lands in gc.garbage.
    # (Log events hold their source: they go to a throwaway observer here.)
    monkeypatch.setattr(TeltonikaProtocol, "log", Logger(observer=lambda _: None))
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        factory = make_factory()
        protocol, transport = logged_in(factory)
        protocol.commands.submit(getinfo())
        _, silent = connect(factory)
        factory.clock.advance(30)  # the silent one's login deadline fires
        transport.loseConnection()
        for closed in (transport, silent):
            closed.protocol = None  # as a TCP transport does once closed
        del protocol, transport, silent
        gc.collect()
        cyclic = {type(thing).__name__ for thing in gc.garbage}
        assert not cyclic & {"TeltonikaProtocol", "SendQueue"}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
