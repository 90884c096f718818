"""The simulator against a small server on loopback TCP (tests/sim_server.py):
what arrives is what was generated, and the device copes with a server that
withholds ACKs, drops the connection or refuses the login."""

import sys

import pytest
import pytest_twisted
from sim_server import SimServer
from twisted.internet import defer, reactor, utils

from teltonika.codec import Message, encode_message
from teltonika.sim.config import Config
from teltonika.sim.fleet import Fleet
from teltonika.sim.imeis import make_imeis

FAST = {"ramp": 1000, "period": 0.05, "history": True, "seed": 11}


def run_fleet(server, port, count, **settings):
    imeis = make_imeis(count)
    config = Config(**{**FAST, **settings})
    fleet = Fleet(reactor, "127.0.0.1", port.getHost().port, imeis, config)
    return fleet, fleet.start().addTimeout(20, reactor)


@pytest.fixture
def server():
    server = SimServer()
    port = server.listen(reactor)
    yield server, port
    pytest_twisted.blockon(defer.maybeDeferred(port.stopListening))


@pytest_twisted.ensureDeferred
async def test_frames_decode_to_the_generated_records(server):
    server, port = server
    fleet, done = run_fleet(server, port, 6, codec="mix", records=4, frames=3)
    stats = await done
    for device in fleet.devices:
        assert len(device.generated) == 12
        assert server.records[device.imei] == device.generated
        assert device.acked_records == device.generated
        assert device.pending == []
    assert {d.codec for d in fleet.devices} == {"8", "8E", "16"}
    assert (stats.frames_sent, stats.frames_acked, stats.frames_resent) == (18, 18, 0)
    assert stats.records_acked == 72
    assert stats.devices_done == 6


@pytest_twisted.ensureDeferred
async def test_withheld_ack_makes_it_resend_the_identical_frame(server):
    server, port = server
    server.withhold_acks = 1
    fleet, done = run_fleet(server, port, 1, frames=2, ack_timeout=0.2)
    stats = await done
    (device,) = fleet.devices
    first, resent, second = server.frames[device.imei]
    assert resent == first
    assert second != first
    assert device.acked_records == device.generated
    assert stats.frames_resent == 1


@pytest_twisted.ensureDeferred
async def test_wrong_count_makes_it_resend(server):
    server, port = server
    server.wrong_acks = 1
    fleet, done = run_fleet(server, port, 1, frames=1, ack_timeout=0.2)
    stats = await done
    (device,) = fleet.devices
    first, resent = server.frames[device.imei]
    assert resent == first
    assert (stats.wrong_acks, stats.frames_resent, stats.frames_acked) == (1, 1, 1)


@pytest_twisted.ensureDeferred
async def test_reconnect_keeps_the_records(server):
    server, port = server
    server.drop_frames = 2  # the first two frames close the connection unACKed
    fleet, done = run_fleet(
        server, port, 1, frames=4, records=2, backoff_initial=0.05, backoff_max=0.1
    )
    stats = await done
    (device,) = fleet.devices
    received = server.records[device.imei]
    first_copies = {r.timestamp: r for r in reversed(received)}
    unique = sorted(first_copies.values(), key=lambda r: r.timestamp)
    assert unique == device.generated == device.acked_records
    assert len(received) > len(unique)  # the dropped frames came again
    assert stats.disconnects == 2
    assert server.logins == [device.imei] * 3


@pytest_twisted.ensureDeferred
async def test_refused_login_leads_to_reconnect_with_backoff(server):
    server, port = server
    server.refuse_logins = 2
    fleet, done = run_fleet(
        server, port, 1, frames=1, backoff_initial=0.05, backoff_max=1
    )
    stats = await done
    (device,) = fleet.devices
    assert server.logins == [device.imei] * 3
    assert stats.logins_refused == 2
    assert device.acked_records == device.generated


@pytest_twisted.ensureDeferred
async def test_commands_answers_and_nack(server):
    server, port = server
    fleet, done = run_fleet(server, port, 1, period=0.2, answer_delay=0.01)
    (device,) = fleet.devices
    imei = device.imei
    await server.wait_until(lambda: imei in server.protocols, reactor)
    server.send(imei, encode_message("12", 0x05, b"getver\r\n"))
    server.send(imei, encode_message("14", 0x05, b"getio", imei=imei))
    server.send(imei, encode_message("14", 0x05, b"getio", imei="490154203237518"))
    await server.wait_until(lambda: len(server.messages[imei]) == 3, reactor)
    fleet.stop()
    stats = await done
    answer12, answer14, nack = server.messages[imei]
    assert (answer12.codec, answer12.type) == ("12", 0x06)
    assert answer12.payload.startswith(b"Ver:")
    assert (answer14.codec, answer14.type, answer14.imei) == ("14", 0x06, imei)
    assert answer14.payload.startswith(b"DI1:")
    assert nack == Message("14", 0x11, b"", imei=imei)
    assert (stats.commands_received, stats.commands_answered) == (3, 3)


@pytest_twisted.ensureDeferred
async def test_stop_with_a_server_gone_still_finishes(server):
    server, port = server
    fleet, done = run_fleet(server, port, 3, backoff_initial=0.05, backoff_max=0.1)
    await server.wait_until(lambda: len(server.protocols) == 3, reactor)
    await port.stopListening()
    for protocol in list(server.protocols.values()):
        protocol.transport.loseConnection()
    await server.wait_until(lambda: not server.protocols, reactor)
    fleet.stop()  # devices are now waiting to reconnect, or connecting
    stats = await done
    assert stats.devices_done == 3
    assert all(d.acked == len(d.generated) - len(d.pending) for d in fleet.devices)


@pytest_twisted.ensureDeferred
async def test_console_script_runs_to_the_frame_bound_and_exits_0(server):
    server, port = server
    out, err, code = await utils.getProcessOutputAndValue(
        sys.executable,
        [
            "-c",
            "from teltonika.sim.cli import main; main()",
            "--port",
            str(port.getHost().port),
            "--devices",
            "5",
            "--period",
            "0.05",
            "--records",
            "3",
            "--codec",
            "mix",
            "--frames",
            "4",
            "--stats",
        ],
    ).addTimeout(30, reactor)
    assert code == 0, err
    assert b"frames sent=20 acked=20 resent=0 records=60" in out
    assert server.record_count == 60
    assert len(server.records) == 5


@pytest_twisted.ensureDeferred
async def test_two_hundred_devices_every_record_once_in_order(server):
    server, port = server
    fleet, done = run_fleet(server, port, 200, codec="mix", records=2, frames=20)
    stats = await done
    assert stats.records_acked == stats.records == 200 * 20 * 2
    for device in fleet.devices:
        assert server.records[device.imei] == device.generated
    assert stats.frames_resent == 0
