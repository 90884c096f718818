"""Cleans up after instances that died without saying so.

An instance that crashes, or loses its host, leaves registry entries pointing
at it and commands waiting in its outbound stream: the back office would
route to it and wait forever.  Its heartbeat key expires on its own, so any
surviving instance (or a small process of its own, `twistd teltonika-janitor`)
can tell it is gone and answer for it.
"""

from collections import defaultdict
from dataclasses import dataclass

from twisted.internet import defer

from teltonika import keys
from teltonika.periodic import PeriodicService
from teltonika.registry import now_ms, scan_registry

DEFAULT_INTERVAL = 30.0
DEFAULT_LOCK_TTL = 30.0
RESPONSES_MAXLEN = 100_000
SCAN_COUNT = 1000

_HEARTBEAT_PREFIX = keys.heartbeat("").encode()
_OUTBOUND_PREFIX = keys.outbound("").encode()

# Everything about one dead instance, in one atomic step.  The heartbeat is
# checked again inside the script: an instance that came back since we
# looked keeps its entries and its stream.  Reading, answering and deleting
# the stream together means an entry the back office adds meanwhile is
# either answered or added to a new stream, never lost in between.
#
# KEYS: registry, heartbeat, outbound stream, responses stream.
# ARGV: instance, at (ms), responses maxlen, then the IMEIs naming it.
# Returns {entries removed, commands answered, streams deleted}, or
# {-1, 0, 0} when the instance turned out to be alive.
_BURY = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {-1, 0, 0}
end
local removed = 0
for i = 4, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then
    removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
if redis.call('TYPE', KEYS[3]).ok ~= 'stream' then
  return {removed, 0, 0}
end
local answered = 0
for _, entry in ipairs(redis.call('XRANGE', KEYS[3], '-', '+')) do
  local command_id, imei
  local fields = entry[2]
  for j = 1, #fields, 2 do
    if fields[j] == 'command_id' and not command_id then
      command_id = fields[j + 1]
    elseif fields[j] == 'imei' and not imei then
      imei = fields[j + 1]
    end
  end
  local xadd = {KEYS[4], 'MAXLEN', '~', ARGV[3], '*'}
  if command_id then
    table.insert(xadd, 'command_id'); table.insert(xadd, command_id)
  end
  if imei then
    table.insert(xadd, 'imei'); table.insert(xadd, imei)
  end
  for _, value in ipairs({'instance', ARGV[1], 'status', 'failed',
                          'reason', 'instance_gone', 'at', ARGV[2]}) do
    table.insert(xadd, value)
  end
  redis.call('XADD', unpack(xadd))
  answered = answered + 1
end
redis.call('DEL', KEYS[3])
return {removed, answered, 1}
"""

# Give the lock back only if it is still ours: it may have expired during a
# slow run and been taken by another janitor.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class JanitorRun:
    """What one run did, for the log and for tests."""

    locked: bool
    dead_instances: tuple = ()
    entries_removed: int = 0
    commands_failed: int = 0
    streams_deleted: int = 0


class Janitor:
    """
    One cleaning pass at a time across the fleet (a lock in Redis).

    @param conn: a txredisapi connection with C{charset=None}, its commands
        bounded in time (L{teltonika.redisconn}).
    @param instance: written as the lock's value, so only we release it.
    @param lock_ttl: seconds the lock lives if we die holding it.
    """

    def __init__(self, conn, instance, clock=None, lock_ttl=DEFAULT_LOCK_TTL):
        if clock is None:
            from twisted.internet import reactor as clock
        self.conn = conn
        self.instance = instance
        self.clock = clock
        self.lock_ttl = lock_ttl

    def run(self):
        """One pass; fires with a L{JanitorRun}, errbacks if Redis failed."""
        return defer.ensureDeferred(self._run())

    async def _run(self):
        got_lock = await self.conn.execute_command(
            "SET", keys.JANITOR_LOCK, self.instance,
            "NX", "PX", int(self.lock_ttl * 1000),
        )
        if got_lock != b"OK":
            return JanitorRun(locked=False)
        try:
            return await self._clean()
        finally:
            await self.conn.eval(
                _RELEASE, keys=[keys.JANITOR_LOCK], args=[self.instance]
            )

    async def _clean(self):
        entries = defaultdict(list)
        for imei, owner in await scan_registry(self.conn):
            entries[owner].append(imei)
        named = set(entries) | await self._outbound_stream_owners()
        dead = await self._without_heartbeat(sorted(named))
        removed = failed = deleted = 0
        buried = []
        for instance in dead:
            r, f, d = await self.conn.eval(
                _BURY,
                keys=[
                    keys.REGISTRY,
                    _HEARTBEAT_PREFIX + instance,
                    _OUTBOUND_PREFIX + instance,
                    keys.COMMAND_RESPONSES,
                ],
                args=[instance, now_ms(self.clock), RESPONSES_MAXLEN,
                      *entries.get(instance, ())],
            )
            if int(r) < 0:
                continue
            buried.append(instance.decode("utf-8", "replace"))
            removed += int(r)
            failed += int(f)
            deleted += int(d)
        return JanitorRun(True, tuple(buried), removed, failed, deleted)

    async def _outbound_stream_owners(self):
        """Instances named by a commands:outbound:* stream, as bytes."""
        owners = set()
        cursor = b"0"
        while True:
            cursor, names = await self.conn.execute_command(
                "SCAN", cursor, "MATCH", _OUTBOUND_PREFIX + b"*",
                "COUNT", SCAN_COUNT, "TYPE", "stream",
            )
            owners.update(name[len(_OUTBOUND_PREFIX):] for name in names)
            if cursor == b"0":
                return owners

    async def _without_heartbeat(self, instances):
        if not instances:
            return []
        beats = await self.conn.execute_command(
            "MGET", *(_HEARTBEAT_PREFIX + instance for instance in instances)
        )
        return [i for i, beat in zip(instances, beats, strict=True) if beat is None]


class JanitorService(PeriodicService):
    """
    Runs the janitor every C{interval} seconds; a failed run is logged and
    the next one happens anyway.
    """

    job = "janitor run"

    def __init__(self, janitor, interval=DEFAULT_INTERVAL, clock=None):
        super().__init__(interval, clock)
        self.janitor = janitor

    def run(self):
        """Fires with a L{JanitorRun}."""
        return self.janitor.run()

    def succeeded(self, run):
        if run.dead_instances or run.streams_deleted:
            self.log.info(
                "janitor: instances gone: {instances}; removed {entries} registry "
                "entries, failed {commands} commands, deleted {streams} streams",
                instances=", ".join(run.dead_instances),
                entries=run.entries_removed,
                commands=run.commands_failed,
                streams=run.streams_deleted,
            )
        return run
