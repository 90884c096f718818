"""Device frames that are not telemetry, kept for the back office to read.

Codec 13 messages, and Codec 12/14 answers nobody waits for, carry text a
person may want to see; they go to the C{devices:messages} stream both as
text (readable) and as hex (exact).
"""

from zope.interface import implementer

from teltonika import keys
from teltonika.codec import frame_to_json
from teltonika.interfaces import IMessageSink

DEFAULT_MAXLEN = 100_000


@implementer(IMessageSink)
class RedisMessageSink:
    """Appends device messages to C{devices:messages} (contract: "Device messages")."""

    def __init__(self, conn, instance, maxlen=DEFAULT_MAXLEN):
        self.conn = conn
        self.instance = instance
        self.maxlen = maxlen

    def store(self, imei, message, received_at):
        # The same codec, type, ts, text and hex that teltonika-decode shows.
        fields = frame_to_json(message)
        fields.update(imei=imei, instance=self.instance, received_at=received_at)
        return self.conn.execute_command(
            "XADD",
            keys.DEVICE_MESSAGES,
            "MAXLEN",
            "~",
            self.maxlen,
            "*",
            *(part for item in fields.items() for part in item),
        )
