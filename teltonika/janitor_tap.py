"""`twistd teltonika-janitor`: the janitor as a small process of its own.

Every server instance already runs the janitor; this is for operators who
would rather run it once, next to Redis, than on every ingestion host.
"""

import socket

from twisted.application.service import MultiService
from twisted.python import usage

from teltonika.janitor import DEFAULT_INTERVAL, Janitor, JanitorService
from teltonika.options import EnvironmentOptions, env_name, positive
from teltonika.redisconn import connection_pool, parse_url


class Options(EnvironmentOptions):
    synopsis = "--redis URL [--janitor-interval SECONDS] [--instance-id NAME]"
    longdesc = (
        "Removes the registry entries of ingestion instances whose heartbeat "
        "is gone and fails their stranded commands with instance_gone.  Each "
        "option can also come from the environment, as the server's do "
        "(TELTONIKA_REDIS, TELTONIKA_JANITOR_INTERVAL, TELTONIKA_INSTANCE_ID), "
        "so both can share one environment file."
    )
    optParameters = [
        ["redis", None, None, "Redis URL: redis://, rediss:// or unix://."],
        [
            "janitor-interval",
            None,
            DEFAULT_INTERVAL,
            "Seconds between runs.",
            positive(float),
        ],
        [
            "instance-id",
            None,
            socket.gethostname(),
            "Name written into the janitor lock while this process holds it.",
        ],
    ]

    def postOptions(self):
        if not self["redis"]:
            raise usage.UsageError("--redis (or %s) is required" % (env_name("redis"),))
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
    return StandaloneJanitor(
        options["redis"], options["instance-id"], options["janitor-interval"]
    )
