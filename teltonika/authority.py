"""Which devices may log in: the back office's allowlist, or anyone.

Every login and every heartbeat asks, so each answer is one Redis round trip
at most.  Failing closed is the caller's decision; this module only makes
sure that an unanswerable question errbacks (the connection is bounded in
time, see L{teltonika.redisconn}) instead of hanging.
"""

from twisted.internet import defer
from zope.interface import implementer

from teltonika import keys
from teltonika.codec import is_imei
from teltonika.interfaces import IDeviceAuthority


@implementer(IDeviceAuthority)
class AllowlistAuthority:
    """Allows the IMEIs in the C{devices:allowed} set, which the back office keeps."""

    def __init__(self, conn):
        self.conn = conn

    def is_allowed(self, imei):
        if not is_imei(imei):
            return defer.succeed(False)
        d = self.conn.execute_command("SISMEMBER", keys.ALLOWED_DEVICES, imei)
        return d.addCallback(lambda member: int(member) == 1)

    def still_allowed(self, imeis):
        imeis = list(imeis)
        if not imeis:
            return defer.succeed(set())
        d = self.conn.execute_command("SMISMEMBER", keys.ALLOWED_DEVICES, *imeis)
        return d.addCallback(
            lambda members: {
                imei
                for imei, member in zip(imeis, members, strict=True)
                if int(member) == 1
            }
        )


@implementer(IDeviceAuthority)
class OpenAuthority:
    """
    Allows any well-formed IMEI: for development, never for a fleet (the
    service warns at start when it runs with this one).
    """

    def is_allowed(self, imei):
        return defer.succeed(is_imei(imei))

    def still_allowed(self, imeis):
        return defer.succeed(set(imeis))
