"""Where each device's socket lives, and the heartbeat that vouches for it.

A back office routes a command by reading C{connections:registry}; the
heartbeat key says the instance named there is alive.  An entry outlives its
socket only as long as the instance's heartbeat does: once the key expires,
the janitor (L{teltonika.janitor}) removes what the dead instance left.
"""

import json
import os
import socket

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import Interface, implementer

from teltonika import keys
from teltonika.interfaces import IConnectionRegistry
from teltonika.periodic import PeriodicService

HSCAN_COUNT = 1000
DEFAULT_HEARTBEAT_INTERVAL = 10.0
REVOKED = "revoked: no longer in " + keys.ALLOWED_DEVICES

# Remove each IMEI whose entry still names ARGV[1]: a device that already
# logged in elsewhere keeps its newer entry.  Atomic, so no HSET from another
# instance can slip in between the check and the delete.
_COMPARE_AND_DELETE = """
local removed = 0
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then
    removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return removed
"""

# Point each IMEI at ARGV[1] unless its entry names another instance: after
# an outage of our own, a device that meanwhile logged in elsewhere is there,
# and our socket to it is the stale one.
_REASSERT = """
local written = 0
for i = 2, #ARGV do
  local owner = redis.call('HGET', KEYS[1], ARGV[i])
  if not owner or owner == ARGV[1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
    written = written + 1
  end
end
return written
"""


def now_ms(clock):
    return int(clock.seconds() * 1000)


def compare_and_delete(conn, instance, imeis):
    """
    Remove the registry entries of C{imeis} that still name C{instance}, in
    one atomic step.  Fire with how many were removed.
    """
    imeis = list(imeis)
    if not imeis:
        return defer.succeed(0)
    d = conn.eval(_COMPARE_AND_DELETE, keys=[keys.REGISTRY], args=[instance, *imeis])
    return d.addCallback(int)


async def scan_registry(conn):
    """Every (imei, instance) pair of the registry, as bytes, walked by HSCAN."""
    pairs = []
    cursor = b"0"
    while True:
        cursor, flat = await conn.execute_command(
            "HSCAN", keys.REGISTRY, cursor, "COUNT", HSCAN_COUNT
        )
        pairs.extend(zip(flat[::2], flat[1::2], strict=True))
        if cursor == b"0":
            return pairs


@implementer(IConnectionRegistry)
class Registry:
    """
    This instance's entries in C{connections:registry} and its heartbeat key.

    @param conn: a txredisapi connection with C{charset=None}; its commands
        should be bounded in time (L{teltonika.redisconn} does it), so that
        no caller waits on a Redis that is down.
    """

    def __init__(self, conn, instance, clock=None, host=None, pid=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.conn = conn
        self.instance = instance
        self.host = host or socket.gethostname()
        self.pid = os.getpid() if pid is None else pid
        self.started_at = now_ms(clock)

    def register(self, imei):
        """A login was accepted here: the newest login always wins."""
        return self.conn.execute_command("HSET", keys.REGISTRY, imei, self.instance)

    def unregister(self, imei):
        """Fire with True if the entry still named this instance and is gone."""
        d = compare_and_delete(self.conn, self.instance, [imei])
        return d.addCallback(bool)

    def purge_own(self):
        """
        Remove every entry naming this instance; fire with how many.  Used
        before accepting devices (they are leftovers of a crash) and at a
        clean shutdown.
        """
        return defer.ensureDeferred(self._purge_own())

    async def _purge_own(self):
        return await compare_and_delete(
            self.conn, self.instance, await self._own_entries()
        )

    async def _own_entries(self):
        me = self.instance.encode()
        return {
            imei.decode()
            for imei, owner in await scan_registry(self.conn)
            if owner == me
        }

    def rewrite(self, connected_imeis):
        """
        Make this instance's entries match its sockets again, after Redis was
        out of reach: remove those of devices that left meanwhile (their
        unregister was lost), then re-assert the live ones in one round trip,
        leaving alone an entry that names another instance.

        @param connected_imeis: called for the live IMEIs right before each
            step, so a device that logs in meanwhile keeps its entry.
        @return: a Deferred firing with (entries removed, entries written).
        """
        return defer.ensureDeferred(self._rewrite(connected_imeis))

    async def _rewrite(self, connected_imeis):
        mine = await self._own_entries()
        gone = mine - set(connected_imeis())
        removed = await compare_and_delete(self.conn, self.instance, gone)
        live = list(connected_imeis())
        if not live:
            return removed, 0
        written = await self.conn.eval(
            _REASSERT, keys=[keys.REGISTRY], args=[self.instance, *live]
        )
        return removed, int(written)

    def heartbeat_value(self, connections):
        return json.dumps(
            {
                "instance": self.instance,
                "pid": self.pid,
                "host": self.host,
                "started_at": self.started_at,
                "connections": connections,
            }
        )

    def write_heartbeat(self, connections, ttl_ms):
        """Say this instance is alive for C{ttl_ms}, holding C{connections}."""
        return self.conn.execute_command(
            "SET",
            keys.heartbeat(self.instance),
            self.heartbeat_value(connections),
            "PX",
            int(ttl_ms),
        )

    def remove_heartbeat(self):
        return self.conn.execute_command("DEL", keys.heartbeat(self.instance))


class ILiveConnections(Interface):
    """What the heartbeat needs from the sockets (the server factory)."""

    def connected_imeis():
        """The IMEIs of the devices logged in on this instance now."""

    def disconnect(imei, reason):
        """Close the socket of C{imei}, logging C{reason}."""


class HeartbeatService(PeriodicService):
    """
    Keeps this instance's heartbeat alive and its devices still allowed.

    Each tick writes the heartbeat (TTL three intervals), re-checks the
    connected IMEIs against the allowlist in one round trip and disconnects
    the revoked ones (their entries go with the normal unregister).  A tick
    that fails is logged and the loop goes on; the next good tick also
    re-asserts the registry entries of the live sockets, since Redis may have
    lost them or the janitor may have removed them meanwhile.

    The first tick removes the leftovers of a previous run before the first
    heartbeat: start the listeners on L{whenReady}.

    @param authority: an L{teltonika.interfaces.IDeviceAuthority}.
    @param connections: an L{ILiveConnections}.
    """

    log = Logger()
    job = "heartbeat"

    def __init__(
        self,
        registry,
        authority,
        connections,
        interval=DEFAULT_HEARTBEAT_INTERVAL,
        clock=None,
    ):
        super().__init__(interval, clock)
        self.registry = registry
        self.authority = authority
        self.connections = connections
        self.healthy = False
        self._ready = False
        self._purged = False
        self._must_rewrite = False
        self._waiting_ready = []

    def whenReady(self):
        """Fire once old entries are purged and the first heartbeat is written."""
        if self._ready:
            return defer.succeed(None)
        d = defer.Deferred()
        self._waiting_ready.append(d)
        return d

    def stopService(self):
        """Stop ticking, then remove our entries and our heartbeat key."""
        super().stopService()
        return defer.ensureDeferred(self._stop())

    async def _stop(self):
        if self.last_run is not None:
            await self.last_run  # so no late heartbeat outlives the removal
        try:
            removed = await self.registry.purge_own()
            await self.registry.remove_heartbeat()
        except Exception:
            self.log.failure("could not remove this instance's registry entries")
        else:
            self.log.info("removed {count} registry entries", count=removed)

    def run(self):
        return defer.ensureDeferred(self._beat())

    async def _beat(self):
        if not self._purged:
            await self.registry.purge_own()
            self._purged = True
        imeis = list(self.connections.connected_imeis())
        await self.registry.write_heartbeat(len(imeis), self.interval * 3 * 1000)
        if self._must_rewrite:
            removed, written = await self.registry.rewrite(
                self.connections.connected_imeis
            )
            self._must_rewrite = False
            self.log.info(
                "registry rewritten after an outage: {written} entries "
                "re-asserted, {removed} of departed devices removed",
                written=written,
                removed=removed,
            )
        if not imeis:
            return
        allowed = await self.authority.still_allowed(imeis)
        for imei in imeis:
            if imei not in allowed:
                self.log.info("imei={imei} revoked: disconnecting", imei=imei)
                self.connections.disconnect(imei, REVOKED)

    def succeeded(self, _):
        self.healthy = self._ready = True
        waiting, self._waiting_ready = self._waiting_ready, []
        for d in waiting:
            d.callback(None)

    def failed(self, failure):
        if self.healthy:
            self.log.failure("heartbeat failed; will retry", failure)
        else:
            self.log.warn(
                "heartbeat failed again: {error}", error=failure.getErrorMessage()
            )
        self.healthy = False
        self._must_rewrite = True
