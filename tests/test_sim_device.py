"""One device's protocol with a fake clock and transport: login, ACKs,
resends, reconnects and backoff."""

import pytest
from sim_rig import IMEI, Rig

from teltonika.codec import decode_frame, encode_ack, encode_login
from teltonika.sim import device as states


def test_login_is_the_imei_and_nothing_is_sent_before_the_answer():
    rig = Rig()
    rig.device.power_on()
    rig.accept()
    rig.device.tick()
    assert rig.sent() == encode_login(IMEI)
    assert rig.device.state == states.LOGGING_IN


def test_each_tick_sends_a_frame_of_the_new_records():
    rig = Rig(records=3, codec="8E")
    rig.online()
    rig.device.tick()
    frame = rig.sent()
    packet = decode_frame(frame)
    assert packet.codec == "8E"
    assert list(packet.records) == rig.device.generated == rig.device.pending
    assert rig.device.in_flight == frame
    assert rig.stats.frames_sent == 1


def test_matching_ack_releases_the_records():
    rig = Rig(records=2)
    rig.online()
    rig.device.tick()
    rig.sent()
    rig.reactor.advance(0.25)
    rig.receive(encode_ack(2))
    assert rig.device.pending == []
    assert rig.device.acked_records == rig.device.generated
    assert rig.device.in_flight is None
    assert (rig.stats.frames_acked, rig.stats.records_acked) == (1, 2)
    assert 0.245 < rig.stats.ack_latency.percentile(0.5) < 0.255
    assert not rig.reactor.getDelayedCalls()  # the ACK timer is gone


def test_no_ack_resends_the_identical_frame_after_the_timeout():
    rig = Rig(ack_timeout=5)
    rig.online()
    rig.device.tick()
    frame = rig.sent()
    rig.reactor.advance(4.9)
    assert rig.sent() == b""
    rig.reactor.advance(0.1)
    assert rig.sent() == frame
    rig.reactor.advance(5)
    assert rig.sent() == frame
    assert rig.stats.frames_resent == 2
    assert rig.stats.frames_sent == 1


def test_wrong_count_is_ignored_and_the_frame_resent_at_the_timeout():
    rig = Rig(records=3, ack_timeout=5)
    rig.online()
    rig.device.tick()
    frame = rig.sent()
    rig.receive(encode_ack(2))
    assert rig.stats.wrong_acks == 1
    assert rig.device.acked == 0
    rig.reactor.advance(5)
    assert rig.sent() == frame
    rig.receive(encode_ack(3))
    assert rig.device.acked == 3


def test_bytes_one_at_a_time():
    rig = Rig(records=2)
    rig.device.power_on()
    rig.accept()
    rig.sent()
    rig.receive(b"\x01", chunk=1)
    rig.device.tick()
    rig.sent()
    rig.receive(encode_ack(2), chunk=1)
    assert rig.device.acked == 2


def test_login_answer_and_ack_in_one_chunk():
    rig = Rig()
    rig.device.power_on()
    rig.device.tick()  # records while the login is under way
    rig.accept()
    rig.sent()
    rig.receive(b"\x01" + encode_ack(1))
    assert rig.device.acked == 1


def test_late_ack_with_nothing_in_flight_is_counted_and_ignored():
    rig = Rig()
    rig.online()
    rig.receive(encode_ack(1))
    assert rig.stats.late_acks == 1
    assert rig.transport.connected


def test_backlog_goes_out_frame_after_frame_once_acked():
    rig = Rig(records=2)
    rig.device.power_on()
    for _ in range(3):
        rig.device.tick()  # offline: the device keeps recording
    rig.accept()
    rig.sent()
    rig.receive(b"\x01")
    generated = rig.device.generated
    for batch in range(3):
        (packet,) = rig.sent_frames()
        assert list(packet.records) == generated[2 * batch : 2 * batch + 2]
        rig.receive(encode_ack(2))
    assert rig.device.acked == 6
    assert rig.sent() == b""


def test_refused_login_closes_and_reconnects_after_backoff():
    rig = Rig(backoff_initial=1, backoff_max=8)
    rig.device.power_on()
    rig.accept()
    rig.receive(b"\x00" + encode_ack(1))  # bytes after a refusal are ignored
    assert not rig.transport.connected
    assert rig.stats.logins_refused == 1
    assert rig.device.state == states.WAITING
    rig.reactor.advance(0.49)
    assert rig.attempts == 1
    rig.reactor.advance(0.51)
    assert rig.attempts == 2
    assert rig.device.state == states.CONNECTING


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets_on_login():
    rig = Rig(backoff_initial=1, backoff_max=8)
    rig.device.power_on()
    delays = []
    for _ in range(6):
        rig.accept()
        rig.receive(b"\x00")
        (call,) = rig.reactor.getDelayedCalls()
        delays.append(call.getTime() - rig.reactor.seconds())
        rig.reactor.advance(delays[-1])
    ceilings = [1, 2, 4, 8, 8, 8]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    rig.accept()
    rig.receive(b"\x01")
    assert rig.device.failures == 0
    rig.transport.loseConnection()
    (call,) = rig.reactor.getDelayedCalls()
    assert call.getTime() - rig.reactor.seconds() <= 1


def test_any_login_answer_but_01_is_a_refusal():
    rig = Rig()
    rig.device.power_on()
    rig.accept()
    rig.receive(b"\x02")
    assert rig.stats.logins_refused == 1
    assert not rig.transport.connected


def test_connection_lost_keeps_records_and_resends_the_frame_in_flight():
    rig = Rig(records=2, backoff_initial=1)
    rig.online()
    rig.device.tick()
    frame = rig.sent()
    rig.transport.loseConnection()
    rig.device.tick()  # records while disconnected
    assert len(rig.device.pending) == 4
    rig.reactor.advance(1)
    rig.accept()
    assert rig.sent() == encode_login(IMEI)
    rig.receive(b"\x01")
    assert rig.sent() == frame  # the same bytes first
    rig.receive(encode_ack(2))
    (packet,) = rig.sent_frames()
    assert list(packet.records) == rig.device.generated[2:]
    assert rig.stats.disconnects == 1
    assert rig.stats.frames_resent == 1


def test_connection_failure_retries_with_backoff():
    rig = Rig(backoff_initial=2)
    rig.device.power_on()
    factory = rig.reactor.tcpClients[-1][2]
    factory.clientConnectionFailed(rig.reactor.connectors[-1], None)
    assert rig.stats.connect_failures == 1
    rig.reactor.advance(2)
    assert rig.attempts == 2


def test_frames_bound_stops_the_device_once_everything_is_acked():
    rig = Rig(frames=2)
    rig.online()
    for _ in range(3):
        rig.device.tick()
        rig.sent()
        rig.receive(encode_ack(1))
    assert len(rig.device.generated) == 2
    assert rig.device.state == states.STOPPED
    assert rig.stopped == [rig.device]
    assert not rig.transport.connected


def test_frames_bound_waits_for_the_records_of_a_reconnect():
    rig = Rig(frames=1, backoff_initial=1)
    rig.online()
    rig.device.tick()
    rig.transport.loseConnection()
    assert rig.device.state == states.WAITING
    rig.reactor.advance(1)
    rig.accept()
    rig.receive(b"\x01")
    rig.receive(encode_ack(1))
    assert rig.device.state == states.STOPPED


def test_stop_while_waiting_to_reconnect_cancels_the_retry():
    rig = Rig()
    rig.device.power_on()
    rig.accept()
    rig.receive(b"\x00")
    rig.device.stop()
    assert rig.device.state == states.STOPPED
    assert rig.reactor.getDelayedCalls() == []
    assert rig.stopped == [rig.device]


def test_stop_while_online_keeps_unacked_records():
    rig = Rig()
    rig.online()
    rig.device.tick()
    rig.device.stop()
    assert not rig.transport.connected
    assert rig.device.state == states.STOPPED
    assert len(rig.device.pending) == 1
    assert rig.reactor.getDelayedCalls() == []


def test_stop_while_connecting_stops_the_attempt():
    rig = Rig()
    rig.device.power_on()
    connector = rig.reactor.connectors[-1]
    rig.device.stop()
    assert connector.stoppedConnecting
    assert rig.device.state == states.STOPPING
    rig.reactor.tcpClients[-1][2].clientConnectionFailed(connector, None)
    assert rig.device.state == states.STOPPED


def test_stopping_twice_reports_once():
    rig = Rig()
    rig.device.stop()
    rig.device.stop()
    assert rig.stopped == [rig.device]


@pytest.mark.parametrize("codec", ["8", "8E", "16"])
def test_every_codec_round_trips(codec):
    rig = Rig(codec=codec, records=5)
    rig.online()
    rig.device.tick()
    (packet,) = rig.sent_frames()
    assert packet.codec == codec
    assert list(packet.records) == rig.device.generated
