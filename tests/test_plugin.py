"""`twistd teltonika` as an operator runs it: a real process, embedded Redis."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest_twisted
import treq
from twisted.internet import reactor, task
from twisted.internet.error import ConnectError

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening_addresses(port):
    """Local addresses of the listening TCP sockets on ``port`` (from /proc)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                local, _, state = line.split()[1:4]
                address, hex_port = local.split(":")
                if int(hex_port, 16) == port and state == "0A":
                    found.add(address)
    return found


def test_twistd_lists_the_plugins():
    help_text = subprocess.run(
        [TWISTD, "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "teltonika " in help_text
    assert "teltonika-janitor" in help_text


async def get_ready(port, attempts=150):
    for _ in range(attempts):
        try:
            response = await treq.get(f"http://127.0.0.1:{port}/ready")
            if response.code == 200:
                return json.loads(await response.text())
        except ConnectError:
            pass  # not listening yet
        await task.deferLater(reactor, 0.1, lambda: None)
    raise AssertionError("the server never became ready")


@pytest_twisted.ensureDeferred
async def test_twistd_teltonika_serves_ready_on_loopback_only(tmp_path):
    health, devices = free_port(), free_port()
    server = subprocess.Popen(
        [
            TWISTD,
            "--nodaemon",
            "--pidfile=",
            "teltonika",
            "--state-dir",
            str(tmp_path / "state"),
            "--listen",
            f"tcp:{devices}",
            "--health",
            f"tcp:{health}:interface=127.0.0.1",
            "--log-format",
            "json",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert await get_ready(health) == {"status": "ready"}
        assert listening_addresses(health) == {"0100007F"}
        with socket.create_connection(("127.0.0.1", devices)) as device:
            device.sendall(b"\x00\x0f356307042441013")
            assert device.recv(1) == b"\x00"  # not on the (empty) allowlist
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    # After a clean shutdown twistd re-raises the signal it stopped for.
    assert server.returncode == -signal.SIGTERM
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    messages = [line["message"] for line in lines]
    assert any("accepting devices" in message for message in messages)
    refused = [line for line in lines if line["message"].startswith("login refused")]
    assert refused[0]["imei"] == "356307042441013"
    assert refused[0]["reason"] == "not on the allowlist"
    assert any("redis-server stopped" in message for message in messages)
    assert messages[-1] == "Server Shut Down."
