"""Commands: answers, their timing against frames in flight, Codec 14 nACKs,
and telling command frames from ACKs in a chunked stream."""

import random

import pytest
from sim_rig import IMEI, OTHER_IMEI, Rig

from teltonika.codec import Message, encode_ack, encode_message
from teltonika.sim.commands import answer
from teltonika.sim.vehicle import Vehicle

COMMAND = 0x05


def command12(text):
    return encode_message("12", COMMAND, text.encode())


def command14(text, imei=IMEI):
    return encode_message("14", COMMAND, text.encode(), imei=imei)


def test_codec12_command_is_answered_after_the_delay():
    rig = Rig(answer_delay=2)
    rig.online()
    rig.receive(command12("getver"))
    rig.reactor.advance(1.9)
    assert rig.sent() == b""
    rig.reactor.advance(0.1)
    (reply,) = rig.sent_frames()
    assert (reply.codec, reply.type) == ("12", 0x06)
    assert reply.payload.startswith(b"Ver:")
    assert IMEI.encode() in reply.payload
    assert rig.device.commands == [Message("12", COMMAND, b"getver")]
    assert rig.stats.commands_answered == 1


def test_codec14_with_our_imei_is_answered_with_it():
    rig = Rig(answer_delay=0)
    rig.online()
    rig.receive(command14("getgps"))
    rig.reactor.advance(0)
    (reply,) = rig.sent_frames()
    assert (reply.codec, reply.type, reply.imei) == ("14", 0x06, IMEI)
    assert reply.payload.startswith(b"GPS:1 Sat:")


def test_codec14_for_another_imei_gets_a_nack_with_our_imei():
    rig = Rig(answer_delay=0)
    rig.online()
    rig.receive(command14("getver", imei=OTHER_IMEI))
    rig.reactor.advance(0)
    (reply,) = rig.sent_frames()
    assert reply == Message("14", 0x11, b"", imei=IMEI)
    assert rig.stats.nacks_sent == 1


def test_no_answer_while_a_frame_waits_for_its_ack():
    rig = Rig(answer_delay=1)
    rig.online()
    rig.device.tick()
    rig.sent()
    rig.receive(command12("getio"))  # arrives before the ACK
    rig.reactor.advance(1)
    assert rig.sent() == b""
    rig.receive(encode_ack(1))
    (reply,) = rig.sent_frames()
    assert reply.payload.startswith(b"DI1:")


def test_answers_go_before_the_next_frame():
    rig = Rig(answer_delay=1)
    rig.online()
    rig.device.tick()
    rig.sent()
    rig.receive(command12("getver"))
    rig.reactor.advance(1)
    rig.device.tick()  # a second batch is waiting too
    rig.receive(encode_ack(1))
    answer_frame, avl = rig.sent_frames()
    assert answer_frame.type == 0x06
    assert avl.records == (rig.device.generated[1],)


def test_commands_split_and_glued_to_acks():
    rig = Rig(answer_delay=0, records=2)
    rig.online()
    rig.device.tick()
    rig.sent()
    stream = command12("getver") + encode_ack(2) + command14("getinfo")
    rig.receive(stream, chunk=1)
    rig.reactor.advance(0)
    assert rig.device.acked == 2
    assert [m.payload for m in rig.device.commands] == [b"getver", b"getinfo"]
    replies = rig.sent_frames()
    assert [r.codec for r in replies] == ["12", "14"]


def test_zero_ack_followed_by_a_command_is_a_wrong_count():
    rig = Rig(answer_delay=0, ack_timeout=5)
    rig.online()
    rig.device.tick()
    frame = rig.sent()
    rig.receive(encode_ack(0) + command12("getver"), chunk=3)
    assert rig.stats.wrong_acks == 1
    assert [m.payload for m in rig.device.commands] == [b"getver"]
    rig.reactor.advance(5)
    assert rig.sent() == frame


def test_zero_ack_followed_by_an_ack():
    rig = Rig(records=2, ack_timeout=5)
    rig.online()
    rig.device.tick()
    rig.sent()
    rig.receive(encode_ack(0) + encode_ack(2))
    assert rig.stats.wrong_acks == 0  # byte 8 not here yet: undecided
    rig.receive(encode_ack(0))  # a third item settles it
    assert rig.stats.wrong_acks == 1
    assert rig.device.acked == 2


def test_lone_zero_ack_is_settled_at_the_timeout():
    rig = Rig(records=2, ack_timeout=5)
    rig.online()
    rig.device.tick()
    frame = rig.sent()
    rig.receive(encode_ack(0) + encode_ack(2))
    rig.reactor.advance(5)
    assert rig.device.acked == 2  # the zeros were an ACK of 0; 2 matched
    assert rig.stats.wrong_acks == 1
    assert rig.sent() == b""  # so nothing to resend
    assert frame


def test_lone_zero_bytes_then_resend_at_the_timeout():
    rig = Rig(ack_timeout=5)
    rig.online()
    rig.device.tick()
    frame = rig.sent()
    rig.receive(encode_ack(0))
    rig.reactor.advance(5)
    assert rig.stats.wrong_acks == 1
    assert rig.sent() == frame
    rig.receive(encode_ack(1))
    assert rig.device.acked == 1


def test_partial_command_is_not_taken_for_an_ack_at_the_timeout():
    rig = Rig(answer_delay=0, ack_timeout=5)
    rig.online()
    rig.device.tick()
    frame = rig.sent()
    command = command12("getver")
    rig.receive(command[:10])
    rig.reactor.advance(5)
    assert rig.sent() == frame
    rig.receive(command[10:] + encode_ack(1))
    assert rig.device.acked == 1
    assert [m.payload for m in rig.device.commands] == [b"getver"]


def test_command_frame_with_bad_crc_is_skipped():
    rig = Rig(answer_delay=0)
    rig.online()
    broken = bytearray(command12("getver"))
    broken[-1] ^= 0xFF
    rig.receive(bytes(broken) + command12("getio"))
    rig.reactor.advance(0)
    assert rig.stats.bad_frames == 1
    assert [m.payload for m in rig.device.commands] == [b"getio"]
    assert rig.transport.connected


def test_non_command_message_is_skipped():
    rig = Rig(answer_delay=0)
    rig.online()
    rig.receive(encode_message("12", 0x06, b"an answer, not a command"))
    assert rig.stats.bad_frames == 1
    assert rig.device.commands == []


def test_unframeable_stream_closes_the_connection():
    rig = Rig()
    rig.online()
    rig.receive(b"\x00\x00\x00\x00\x7f\xff\xff\xff\x0c")  # a 2 GB frame
    assert rig.stats.bad_frames == 1
    assert not rig.transport.connected


def test_answers_due_on_a_lost_connection_are_dropped():
    rig = Rig(answer_delay=1, backoff_initial=1)
    rig.online()
    rig.receive(command12("getver"))
    rig.transport.loseConnection()
    assert [c.func for c in rig.reactor.getDelayedCalls()] == [rig.device._connect]


def test_frames_bound_waits_for_due_answers():
    rig = Rig(frames=1, answer_delay=1)
    rig.online()
    rig.device.tick()
    rig.sent()
    rig.receive(command12("getver"))
    rig.receive(encode_ack(1))
    assert rig.transport.connected
    rig.reactor.advance(1)
    assert rig.sent_frames()[0].type == 0x06
    assert not rig.transport.connected


@pytest.fixture
def vehicle():
    return Vehicle(random.Random(3), "8E")


@pytest.mark.parametrize(
    ("command", "start"),
    [
        ("getver", "Ver:"),
        ("getinfo\r\n", "RTC:"),
        ("getgps", "GPS:1 "),
        ("GETIO", "DI1:"),
        ("setdigout 1?", "DOUT1:1 DOUT2:0 "),
        ("flush 1,2", "Unknown command: flush"),
        ("", "Unknown command"),
        ("setdigout", "Wrong DOUT parameters: missing"),
        ("setdigout 12", "Wrong DOUT parameters: 12"),
        ("setdigout 101", "Wrong DOUT parameters: 101"),
    ],
)
def test_answer_texts(vehicle, command, start):
    assert answer(command, IMEI, vehicle, [0, 0]).startswith(start)


def test_setdigout_changes_what_getio_reports(vehicle):
    outputs = [0, 0]
    answer("setdigout 01", IMEI, vehicle, outputs)
    assert outputs == [0, 1]
    answer("setdigout ?0", IMEI, vehicle, outputs)
    assert outputs == [0, 0]
    answer("setdigout 1", IMEI, vehicle, outputs)
    assert answer("getio", IMEI, vehicle, outputs).endswith("DO1:1 DO2:0")
