"""One JSON object per log line, for log shippers (--log-format json)."""

import json
import sys

from twisted.logger import ILogObserver, formatEvent
from zope.interface import implementer

_PLAIN = (str, int, float, bool, type(None))


@implementer(ILogObserver)
class JSONLinesObserver:
    """
    Writes the formatted message plus the event's own plain fields (imei,
    peer, reason...), so a log search can filter on them without parsing
    the text.
    """

    def __init__(self, out):
        self._out = out

    def __call__(self, event):
        record = {
            "time": event.get("log_time"),
            "level": event["log_level"].name if "log_level" in event else None,
            "system": event.get("log_namespace"),
            "message": formatEvent(event),
        }
        for key, value in event.items():
            if not key.startswith("log_") and isinstance(value, _PLAIN):
                record.setdefault(key, value)
        failure = event.get("log_failure")
        if failure is not None:
            record["traceback"] = failure.getTraceback()
        self._out.write(json.dumps(record) + "\n")
        self._out.flush()


def json_lines_observer():
    """The factory twistd's --logger option takes."""
    return JSONLinesObserver(sys.stdout)
