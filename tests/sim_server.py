"""A small Teltonika server for the simulator's tests and capacity bench.

Not the project's server: just enough to log devices in, ACK (or misbehave
on purpose), record what arrived and send commands.  Tests set the knobs
(refuse_logins, withhold_acks, wrong_acks, drop_frames) and wait with
wait_until() on conditions over what was received.

As a script (`python tests/sim_server.py --port 5027`) it ACKs everything,
keeps only counts, and prints them every 10 s: the bench's minimal server.
"""

import argparse
import resource
import sys
from collections import defaultdict

from twisted.internet import defer
from twisted.internet.protocol import Protocol, ServerFactory

from teltonika.codec import (
    AVLPacket,
    FrameKind,
    decode_frame,
    decode_login,
    encode_ack,
    next_frame,
)


class SimServerProtocol(Protocol):
    def __init__(self, server):
        self.server = server
        self.imei = None
        self.buffer = bytearray()

    def connectionMade(self):
        self.server.connections += 1

    def connectionLost(self, reason):
        if self.server.protocols.get(self.imei) is self:
            del self.server.protocols[self.imei]
        self.server.changed()

    def dataReceived(self, data):
        self.buffer += data
        while self.connected:
            kind, size = next_frame(self.buffer)
            if kind is FrameKind.NEED_MORE:
                break
            frame = bytes(self.buffer[:size])
            del self.buffer[:size]
            if kind is FrameKind.LOGIN:
                self._login(decode_login(frame))
            elif kind is FrameKind.DATA:
                self._frame(frame)
        self.server.changed()

    def _login(self, imei):
        server = self.server
        server.logins.append(imei)
        if server.refuse_logins:
            server.refuse_logins -= 1
            self.transport.write(b"\x00")
            return
        self.imei = imei
        server.protocols[imei] = self
        self.transport.write(b"\x01")

    def _frame(self, frame):
        server = self.server
        decoded = decode_frame(frame)
        if not isinstance(decoded, AVLPacket):
            server.messages[self.imei].append(decoded)
            return
        server.frame_count += 1
        server.record_count += len(decoded.records)
        if server.keep:
            server.frames[self.imei].append(frame)
            server.records[self.imei].extend(decoded.records)
        if server.drop_frames:
            server.drop_frames -= 1
            self.transport.loseConnection()
        elif server.withhold_acks:
            server.withhold_acks -= 1
        elif server.wrong_acks:
            server.wrong_acks -= 1
            self.transport.write(encode_ack(len(decoded.records) + 1))
        else:
            self.transport.write(encode_ack(len(decoded.records)))


class SimServer(ServerFactory):
    noisy = False

    def __init__(self, keep=True):
        self.keep = keep
        self.refuse_logins = 0
        self.withhold_acks = 0
        self.wrong_acks = 0
        self.drop_frames = 0
        self.connections = 0
        self.frame_count = 0
        self.record_count = 0
        self.logins = []
        self.protocols = {}
        self.frames = defaultdict(list)
        self.records = defaultdict(list)
        self.messages = defaultdict(list)
        self._waiters = []

    def buildProtocol(self, addr):
        return SimServerProtocol(self)

    def listen(self, reactor):
        """Listen on a free loopback port; returns the IListeningPort."""
        return reactor.listenTCP(0, self, interface="127.0.0.1")

    def send(self, imei, data):
        self.protocols[imei].transport.write(data)

    def wait_until(self, condition, reactor, timeout=10):
        """A Deferred that fires once condition() holds (checked whenever
        something arrives); fails with TimeoutError after `timeout`."""
        waiter = defer.Deferred()
        if condition():
            waiter.callback(None)
            return waiter
        self._waiters.append((condition, waiter))
        return waiter.addTimeout(timeout, reactor)

    def changed(self):
        still_waiting = []
        for condition, waiter in self._waiters:
            if waiter.called:
                continue
            if condition():
                waiter.callback(None)
            else:
                still_waiting.append((condition, waiter))
        self._waiters = still_waiting


def main(argv=None):
    from twisted.internet import reactor, task

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5027)
    parser.add_argument("--interface", default="127.0.0.1")
    args = parser.parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = SimServer(keep=False)
    reactor.listenTCP(args.port, server, interface=args.interface, backlog=4096)

    def report():
        print(
            f"connections={server.connections} online={len(server.protocols)}"
            f" frames={server.frame_count} records={server.record_count}",
            flush=True,
        )

    task.LoopingCall(report).start(10, now=False)
    reactor.run()


if __name__ == "__main__":
    sys.exit(main())
