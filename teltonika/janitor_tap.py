"""`twistd teltonika-janitor`: the janitor as a small process of its own.

Every server instance already runs the janitor; this is for operators who
would rather run it once, next to Redis, than on every ingestion host.
"""

import os
import socket

from twisted.application.service import MultiService
from twisted.python import usage

from teltonika.janitor import DEFAULT_INTERVAL, Janitor, JanitorService
from teltonika.redisconn import connection_pool, parse_url

ENVIRONMENT = {
    "redis": "TELTONIKA_REDIS",
    "interval": "TELTONIKA_JANITOR_INTERVAL",
    "instance-id": "TELTONIKA_INSTANCE_ID",
}


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0:
        raise ValueError("must be a number of seconds above 0, not %r" % (text,))
    return value


_seconds.coerceDoc = "Seconds, above 0."


class Options(usage.Options):
    synopsis = "--redis URL [--interval SECONDS] [--instance-id NAME]"
    longdesc = (
        "Removes the registry entries of ingestion instances whose heartbeat "
        "is gone and fails their stranded commands with instance_gone.  Each "
        "option can also come from the environment: "
        + ", ".join("--%s from %s" % item for item in ENVIRONMENT.items())
        + "."
    )
    optParameters = [
        ["redis", None, None, "Redis URL: redis://, rediss:// or unix://."],
        ["interval", None, DEFAULT_INTERVAL, "Seconds between runs.", _seconds],
        ["instance-id", None, socket.gethostname(),
         "Name written into the janitor lock while this process holds it."],
    ]

    def __init__(self):
        super().__init__()
        # Defaults from the environment; the command line, parsed later,
        # overrides them.
        for option, variable in ENVIRONMENT.items():
            if variable in os.environ:
                self.opts[option] = os.environ[variable]

    def postOptions(self):
        if isinstance(self["interval"], str):  # it came from the environment
            try:
                self["interval"] = _seconds(self["interval"])
            except ValueError as e:
                raise usage.UsageError(
                    "%s: %s" % (ENVIRONMENT["interval"], e)
                ) from None
        if not self["redis"]:
            raise usage.UsageError(
                "--redis (or %s) is required" % (ENVIRONMENT["redis"],)
            )
        try:
            parse_url(self["redis"])
        except ValueError as e:
            raise usage.UsageError(str(e)) from None


class StandaloneJanitor(MultiService):
    """
    Owns its Redis connection: opened when the service starts (after twistd
    has daemonized), closed when it stops.
    """

    def __init__(self, redis_url, instance, interval):
        super().__init__()
        self.redis_url = redis_url
        self.instance = instance
        self.interval = interval
        self.conn = None
        self.janitor = None

    def startService(self):
        self.conn = connection_pool(self.redis_url, poolsize=1)
        self.janitor = JanitorService(
            Janitor(self.conn, self.instance, lock_ttl=self.interval),
            self.interval,
        )
        self.janitor.setServiceParent(self)
        super().startService()

    def stopService(self):
        d = super().stopService()
        d.addBoth(lambda _: self.removeService(self.janitor))
        return d.addBoth(lambda _: self.conn.disconnect())


def makeService(options):
    return StandaloneJanitor(options["redis"], options["instance-id"],
                             options["interval"])
