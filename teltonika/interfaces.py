"""What the connection handling needs from the outside world.

The protocol and its factory speak only to these interfaces, so they never
see a Redis command: tests can hand them simple fakes, and each Redis concern
lives in its own module behind one of them.
"""

from zope.interface import Interface


class IDeviceAuthority(Interface):
    """Decides which IMEIs may log in (contract: "Device authority")."""

    def is_allowed(imei):
        """
        Fire a Deferred with True or False.  Errback when the answer cannot be
        had (Redis down): the caller must then refuse, it fails closed.
        """

    def still_allowed(imeis):
        """
        Fire a Deferred with the set of those IMEIs that are still allowed, in
        one round trip: the heartbeat disconnects the others (revocation).
        """


class ITelemetrySink(Interface):
    """Stores the records of AVL frames; the ACK waits on it."""

    def store(imei, packet, frame, received_at):
        """
        Write every record of C{packet} (a L{teltonika.codec.AVLPacket}) in
        one atomic step, unless C{frame} (the raw bytes) is identical to the
        last frame stored for C{imei}.  Fire True once written, False for such
        a duplicate; errback if nothing could be stored.  C{received_at} is in
        ms.
        """


class IMessageSink(Interface):
    """Keeps device frames that are neither telemetry nor a command's answer."""

    def store(imei, message, received_at):
        """
        Append C{message} (a L{teltonika.codec.Message}) to the device
        messages stream; fire when written.
        """


class IConnectionRegistry(Interface):
    """Tells the fleet which instance holds a device's socket."""

    def register(imei):
        """Point the device at this instance; fire when written."""

    def unregister(imei):
        """Remove the device's entry only if it still names this instance."""
