"""AVL records into the telemetry stream, one atomic Redis step per frame.

The ACK a device gets promises that its records are stored, and a device
whose ACK went missing resends the very same frame.  Both needs meet in one
Lua script: it drops a frame whose fingerprint equals the last one stored for
that IMEI, and otherwise appends every record and remembers the new
fingerprint, all or nothing.

This runs for every frame from every device, so the Python side is kept
cheap: all records travel in a single argument, a line per record with its
values joined by C{|}, which spares txredisapi from encoding a dozen
arguments per record (its per-argument cost was the largest single item in
the server's profile); the script takes the lines apart and adds the field
names.
"""

import hashlib

import txredisapi
from twisted.logger import Logger
from zope.interface import implementer

from teltonika import keys
from teltonika.interfaces import ITelemetrySink

# Long enough to outlast any outage a device buffers through before it
# resends, short enough that decommissioned devices leave no key behind.
FINGERPRINT_TTL = 7 * 24 * 3600

DEFAULT_MAXLEN = 1_000_000

# KEYS: stream, fingerprint key.
# ARGV: fingerprint, its TTL (s), MAXLEN, imei, codec, instance, received_at,
#       and the records: one "ts|priority|lat|lon|alt|angle|sat|speed|event|
#       gen|io" line each (gen empty but for Codec 16), ending in a newline.
#       io is JSON of digits and hex: it holds neither "|" nor a newline.
# Returns the number of entries added, or -1 for a duplicate (a frame of no
# records is stored, and returns 0).
STORE_FRAME = b"""
local stream, fingerprint_key = KEYS[1], KEYS[2]
local fingerprint, ttl, maxlen = ARGV[1], ARGV[2], ARGV[3]
if redis.call('GET', fingerprint_key) == fingerprint then
    return -1
end
local imei, codec, instance, received_at = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local fields = '([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|'
    .. '([^|]*)|([^|]*)|([^|]*)|([^|\\n]*)\\n'
local added = 0
for ts, pri, lat, lon, alt, angle, sat, speed, event, gen, io in
        string.gmatch(ARGV[8], fields) do
    added = added + 1
    if gen ~= '' then
        redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*',
            'imei', imei, 'codec', codec, 'ts', ts, 'priority', pri,
            'lat', lat, 'lon', lon, 'alt', alt, 'angle', angle, 'sat', sat,
            'speed', speed, 'event', event, 'gen', gen, 'io', io,
            'instance', instance, 'received_at', received_at)
    else
        redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*',
            'imei', imei, 'codec', codec, 'ts', ts, 'priority', pri,
            'lat', lat, 'lon', lon, 'alt', alt, 'angle', angle, 'sat', sat,
            'speed', speed, 'event', event, 'io', io,
            'instance', instance, 'received_at', received_at)
    end
end
redis.call('SET', fingerprint_key, fingerprint, 'EX', ttl)
return added
"""
STORE_FRAME_SHA = hashlib.sha1(STORE_FRAME).hexdigest()


def degrees(wire):
    """
    The wire integer (degrees x 1e7) as text with exactly 7 decimals, by
    integer arithmetic: a float would print -100.3628933 as -100.36289329.
    """
    whole, fraction = divmod(abs(wire), 10_000_000)
    return "%s%d.%07d" % ("-" if wire < 0 else "", whole, fraction)


def io_json(record):
    """
    The record's IO elements as one compact JSON object, keyed by IO id in
    decimal; NX (variable length) values as lowercase hex.  Written by hand:
    ids and values are integers (hex is plain ASCII), so nothing needs
    escaping, and this runs at twice the speed of the json module.
    """
    if record.nx:
        values = dict(record.io)
        values.update((io_id, value.hex()) for io_id, value in record.nx.items())
        items = [
            ('"%d":"%s"' if isinstance(value, str) else '"%d":%d') % (io_id, value)
            for io_id, value in values.items()
        ]
    else:
        items = ['"%d":%d' % item for item in record.io.items()]
    return "{%s}" % ",".join(items)


def record_line(record):
    """One record's values in the order the Lua script expects them."""
    return "%d|%d|%s|%s|%d|%d|%d|%d|%d|%s|%s\n" % (
        record.timestamp,
        record.priority,
        degrees(record.lat),
        degrees(record.lon),
        record.altitude,
        record.angle,
        record.satellites,
        record.speed,
        record.event_id,
        "" if record.generation is None else record.generation,
        io_json(record),
    )


def fingerprint(frame):
    """What identifies a resent frame: its bytes, CRC included."""
    return hashlib.blake2b(frame, digest_size=16).hexdigest()


@implementer(ITelemetrySink)
class RedisTelemetrySink:
    """Stores AVL frames in the telemetry stream (contract: "Telemetry")."""

    log = Logger()

    def __init__(
        self,
        conn,
        instance,
        stream=keys.DEFAULT_TELEMETRY_STREAM,
        maxlen=DEFAULT_MAXLEN,
    ):
        self.conn = conn
        self.instance = instance
        self.stream = stream
        self.maxlen = maxlen

    def store(self, imei, packet, frame, received_at):
        args = [
            self.stream,
            keys.fingerprint(imei),
            fingerprint(frame),
            FINGERPRINT_TTL,
            self.maxlen,
            imei,
            packet.codec,
            self.instance,
            received_at,
        ]
        args.append("".join(map(record_line, packet.records)))
        d = self.conn.execute_command("EVALSHA", STORE_FRAME_SHA, 2, *args)
        d.addErrback(self._loadScript, args)
        d.addCallback(self._written, imei)
        return d

    def _loadScript(self, failure, args):
        """Redis restarted or flushed its script cache: send the script itself."""
        failure.trap(txredisapi.ResponseError)
        if not str(failure.value).startswith("NOSCRIPT"):
            return failure
        return self.conn.execute_command("EVAL", STORE_FRAME, 2, *args)

    def _written(self, reply, imei):
        if int(reply) < 0:
            self.log.info("Duplicate frame from {imei} not stored again", imei=imei)
            return False
        return True
