"""What all the device connections of one instance share."""

from twisted.internet import defer
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger

from teltonika import sendqueue
from teltonika.protocol import TeltonikaProtocol


class TeltonikaFactory(ServerFactory):
    """
    Builds a L{TeltonikaProtocol} per socket and keeps the index of logged-in
    devices: one socket per IMEI on this instance, the newest one wins.
    """

    protocol = TeltonikaProtocol
    log = Logger()

    def __init__(
        self,
        authority,
        telemetry,
        messages,
        registry,
        metrics,
        clock,
        max_frame=65536,
        login_timeout=30.0,
        idle_timeout=600.0,
        queue_depth=sendqueue.DEFAULT_DEPTH,
    ):
        self.authority = authority
        self.telemetry = telemetry
        self.messages = messages
        self.registry = registry
        self.metrics = metrics
        self.clock = clock
        self.max_frame = max_frame
        self.login_timeout = login_timeout
        self.idle_timeout = idle_timeout
        self.queue_depth = queue_depth
        self.connections = set()
        self.devices = {}
        self._all_closed = None

    def connection_made(self, protocol):
        self.connections.add(protocol)
        self.metrics.connections.inc()

    def logged_in(self, protocol):
        older = self.devices.get(protocol.imei)
        self.devices[protocol.imei] = protocol
        if older is not None:
            older.close("superseded by a newer login", sendqueue.SUPERSEDED)
        self._tell_registry("register", protocol.imei)

    def connection_lost(self, protocol):
        self.connections.discard(protocol)
        self.metrics.connections.dec()
        # A superseded socket no longer owns the entry: leave it to the newer.
        if protocol.imei is not None and self.devices.get(protocol.imei) is protocol:
            del self.devices[protocol.imei]
            self._tell_registry("unregister", protocol.imei)
        if not self.connections and self._all_closed is not None:
            self._all_closed.callback(None)

    def _tell_registry(self, what, imei):
        """The registry is bookkeeping: the read path never waits on it."""
        d = getattr(self.registry, what)(imei)
        d.addErrback(self._registry_failed, what, imei)

    def _registry_failed(self, failure, what, imei):
        self.metrics.redis_errors.labels("registry").inc()
        self.log.error(
            "registry {what} imei={imei} failed: {error}",
            what=what,
            imei=imei,
            error=failure.getErrorMessage(),
        )

    # For the heartbeat ----------------------------------------------------

    def connected_imeis(self):
        return list(self.devices)

    def disconnect(self, imei, reason):
        protocol = self.devices.get(imei)
        if protocol is not None:
            protocol.close(reason)

    # For shutdown ----------------------------------------------------------

    def close_all(self, grace):
        """
        Close every socket, giving a frame that is being stored up to C{grace}
        seconds to be ACKed; after that, abort what is left.  Fires when every
        socket is closed.
        """
        if not self.connections:
            return defer.succeed(None)
        self._all_closed = defer.Deferred()
        for protocol in list(self.connections):
            protocol.close_when_idle("server shutting down", sendqueue.SHUTDOWN)
        abort = self.clock.callLater(grace, self._abort_all)
        self._all_closed.addBoth(_cancel_then_pass, abort)
        return self._all_closed

    def _abort_all(self):
        for protocol in list(self.connections):
            self.log.warn(
                "aborting imei={imei}: still open after the shutdown grace period",
                imei=protocol.imei,
            )
            protocol.transport.abortConnection()


def _cancel_then_pass(result, call):
    if call.active():
        call.cancel()
    return result
