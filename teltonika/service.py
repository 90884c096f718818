"""The service tree `twistd teltonika` runs.

Start order matters: Redis must answer, and this instance's stale registry
entries must be gone with a fresh heartbeat written, before the first device
is accepted; so the device listeners open only at the end of an asynchronous
start-up.  Stop order matters too: stop accepting, let frames being stored
get their ACK, close the sockets, remove this instance from the registry,
and only then let Redis go.
"""

from twisted.application.service import MultiService
from twisted.internet import defer, endpoints, task
from twisted.logger import Logger
from twisted.web.server import Site

from teltonika import redisconn
from teltonika.authority import AllowlistAuthority, OpenAuthority
from teltonika.embedded import EmbeddedRedis
from teltonika.factory import TeltonikaFactory
from teltonika.health import HealthApp
from teltonika.janitor import Janitor, JanitorService
from teltonika.messages import RedisMessageSink
from teltonika.metrics import Metrics
from teltonika.registry import HeartbeatService, Registry
from teltonika.telemetry import RedisTelemetrySink

# How long to wait between attempts to reach Redis at start.
START_RETRY_DELAY = 2.0


class ProbeSite(Site):
    """Probes poll every few seconds: an access line each would drown the log."""

    def log(self, request):
        pass


class TeltonikaService(MultiService):
    """
    One instance: its Redis (embedded or not), its device listeners, the
    heartbeat, and the health endpoint.

    @ivar device_ports: the listening ports, once devices are accepted.
    @ivar accepting: a Deferred that fires once devices are accepted.
    """

    log = Logger()

    def __init__(self, options, reactor):
        super().__init__()
        self.options = options
        self.reactor = reactor
        self.metrics = Metrics()
        self.redis = None
        self.factory = None
        self.heartbeat = None
        self.janitor = None
        self.health_port = None
        self.device_ports = []
        self.accepting = defer.Deferred()
        self._starting = None
        if options["redis"] == "embedded":
            self.embedded = EmbeddedRedis(options["state-dir"])
            self.embedded.setServiceParent(self)
            self.redis_url = self.embedded.url
        else:
            self.embedded = None
            redisconn.parse_url(options["redis"])  # a typo stops us here
            self.redis_url = options["redis"]

    def startService(self):
        super().startService()
        if self.options["authority"] == "open":
            self.log.warn(
                "authority is OPEN: any well-formed IMEI may log in; "
                "for development only"
            )
        self._starting = defer.ensureDeferred(self._start())
        self._starting.addCallbacks(self.accepting.callback, self._start_failed)

    async def _start(self):
        health = HealthApp(self.metrics.registry, self.problems)
        self.health_port = await self._listen(
            self.options["health"], ProbeSite(health.resource())
        )
        if self.embedded is not None:
            await self.embedded.whenReady()
        self.redis = redisconn.connection_pool(
            self.redis_url,
            reply_timeout=self.options["redis-timeout"],
            clock=self.reactor,
        )
        await self._until_redis_answers()
        self.factory = self._make_factory()
        self.heartbeat = HeartbeatService(
            self.factory.registry,
            self.factory.authority,
            self.factory,
            interval=self.options["heartbeat-interval"],
            clock=self.reactor,
        )
        self.heartbeat.setServiceParent(self)
        await self.heartbeat.whenReady()
        if self.options["janitor-interval"]:
            self.janitor = JanitorService(
                Janitor(self.redis, self.options["instance-id"], clock=self.reactor),
                interval=self.options["janitor-interval"],
                clock=self.reactor,
            )
            self.janitor.setServiceParent(self)
        for description in self.options["listen"]:
            self.device_ports.append(await self._listen(description, self.factory))
        self.log.info(
            "instance {instance} accepting devices on {listen}",
            instance=self.options["instance-id"],
            listen=", ".join(self.options["listen"]),
        )

    def _listen(self, description, factory):
        endpoint = endpoints.serverFromString(self.reactor, description)
        return endpoint.listen(factory)

    async def _until_redis_answers(self):
        while True:
            try:
                await redisconn.ping(self.redis)
                return
            except Exception as e:
                self.log.warn(
                    "Redis at {url} does not answer ({error}); retrying",
                    url=self.redis_url,
                    error=e,
                )
                await task.deferLater(self.reactor, START_RETRY_DELAY, lambda: None)

    def _make_factory(self):
        options = self.options
        instance = options["instance-id"]
        if options["authority"] == "open":
            authority = OpenAuthority()
        else:
            authority = AllowlistAuthority(self.redis)
        return TeltonikaFactory(
            authority=authority,
            telemetry=RedisTelemetrySink(
                self.redis,
                instance,
                stream=options["telemetry-stream"],
                maxlen=options["telemetry-maxlen"],
            ),
            messages=RedisMessageSink(self.redis, instance),
            registry=Registry(self.redis, instance, clock=self.reactor),
            metrics=self.metrics,
            clock=self.reactor,
            max_frame=options["max-frame"],
            login_timeout=options["login-timeout"],
            idle_timeout=options["idle-timeout"],
            queue_depth=options["queue-depth"],
        )

    def _start_failed(self, failure):
        if failure.check(defer.CancelledError):
            return  # stopped while starting
        self.log.failure("could not start accepting devices", failure)
        self.accepting.errback(failure)

    def stopService(self):
        return defer.ensureDeferred(self._stop())

    async def _stop(self):
        if self._starting is not None and not self._starting.called:
            self._starting.cancel()
        for port in self.device_ports:
            await port.stopListening()
        self.device_ports = []
        if self.factory is not None:
            await self.factory.close_all(self.options["shutdown-grace"])
        for child in (self.janitor, self.heartbeat):
            if child is not None:
                await defer.maybeDeferred(child.disownServiceParent)
        if self.redis is not None:
            await self.redis.disconnect()
        if self.health_port is not None:
            await self.health_port.stopListening()
        await super().stopService()

    def problems(self):
        """Why the instance is not ready, for /ready: empty when it is."""
        if self.redis is None:
            return defer.succeed(["Redis: not connected yet"])
        problems = [] if self.device_ports else ["device listeners are not up"]

        def redis_down(failure):
            problems.append("Redis: %s" % failure.getErrorMessage())

        d = redisconn.ping(self.redis)
        d.addErrback(redis_down)
        d.addCallback(lambda _: problems)
        return d
