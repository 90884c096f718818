"""Command-line options of `twistd teltonika`, each also an environment variable.

Operators run the server under systemd with an environment file, so every
option X can come from TELTONIKA_X (upper case, dashes as underscores); a
flag on the command line wins over the environment.
"""

import os
import socket

from twisted.python import usage

from teltonika import keys, sendqueue

ENV_PREFIX = "TELTONIKA_"


def env_name(option):
    return ENV_PREFIX + option.upper().replace("-", "_")


def positive(kind):
    description = {int: "A whole number", float: "A number"}[kind] + " above 0"

    def coerce(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0:  # NaN is not above 0 either
            raise ValueError(f"{description.lower()}, not {text!r}")
        return value

    coerce.coerceDoc = description + "."
    return coerce


def _not_negative(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value >= 0:
        raise ValueError(f"a number, 0 or more, not {text!r}")
    return value


_not_negative.coerceDoc = "A number, 0 or more."


def _choice(*choices):
    def coerce(text):
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {text!r}")
        return text

    coerce.coerceDoc = f"One of: {', '.join(choices)}."
    return coerce


class EnvironmentOptions(usage.Options):
    """Options whose defaults come from TELTONIKA_* environment variables."""

    def __init__(self):
        super().__init__()
        for name, _, _, _, *coerce in self.optParameters:
            text = os.environ.get(env_name(name))
            if text is None:
                continue
            try:
                self[name] = coerce[0](text) if coerce else text
            except ValueError as e:
                raise usage.UsageError(f"{env_name(name)}: {e}") from None


class Options(EnvironmentOptions):
    synopsis = "[options]"
    longdesc = (
        "Ingestion server for Teltonika trackers: devices log in over TCP, "
        "their AVL records go to a Redis stream, and only then are they ACKed. "
        f"Every option can also be set as {ENV_PREFIX}<OPTION> in the "
        "environment (e.g. TELTONIKA_REDIS)."
    )

    optParameters = [
        [
            "redis",
            None,
            "embedded",
            "Redis to use: 'embedded' (a private redis-server in --state-dir), "
            "or a redis://, rediss:// or unix:// URL.",
        ],
        [
            "redis-timeout",
            None,
            5.0,
            "Seconds a Redis command may take before it counts as failed "
            "(no ACK, login refused).",
            positive(float),
        ],
        [
            "state-dir",
            None,
            "var/teltonika",
            "Where the embedded Redis keeps its data.",
        ],
        [
            "instance-id",
            None,
            socket.gethostname(),
            "This instance's name in the connection registry.",
        ],
        [
            "authority",
            None,
            "allowlist",
            "'allowlist': only IMEIs in devices:allowed may log in; "
            "'open': any well-formed IMEI (development only).",
            _choice("allowlist", "open"),
        ],
        [
            "health",
            None,
            "tcp:9027:interface=127.0.0.1",
            "Where /health, /ready and /metrics listen (a strports description).",
        ],
        [
            "telemetry-stream",
            None,
            keys.DEFAULT_TELEMETRY_STREAM,
            "The Redis stream AVL records go to.",
        ],
        [
            "telemetry-maxlen",
            None,
            1_000_000,
            "Approximate cap on the telemetry stream's length.",
            positive(int),
        ],
        [
            "max-frame",
            None,
            65536,
            "Largest data frame accepted, in bytes of its declared length.",
            positive(int),
        ],
        [
            "login-timeout",
            None,
            30.0,
            "Seconds a new socket has to log in; also how long a login waits "
            "for the authority.",
            positive(float),
        ],
        [
            "idle-timeout",
            None,
            600.0,
            "Seconds of silence after which a logged-in device is disconnected.",
            positive(float),
        ],
        [
            "shutdown-grace",
            None,
            5.0,
            "Seconds a frame being stored gets to be ACKed when the server stops.",
            positive(float),
        ],
        [
            "heartbeat-interval",
            None,
            10.0,
            "Seconds between heartbeats; the heartbeat key lives three of them.",
            positive(float),
        ],
        [
            "janitor-interval",
            None,
            30.0,
            "Seconds between janitor runs (cleaning up after dead instances); "
            "0 leaves that to a separate twistd teltonika-janitor.",
            _not_negative,
        ],
        [
            "queue-depth",
            None,
            sendqueue.DEFAULT_DEPTH,
            "Commands a device may have waiting, the one being answered included.",
            positive(int),
        ],
        [
            "log-format",
            None,
            "text",
            "'text', or 'json' for one JSON object per line.",
            _choice("text", "json"),
        ],
    ]

    def __init__(self):
        super().__init__()
        listen = os.environ.get(env_name("listen"))
        self["listen"] = listen.split() if listen else []
        self._listen_from_environment = bool(listen)

    def opt_listen(self, description):
        """
        Where devices connect: a strports description, e.g. tcp:5027 or
        ssl:5027:privateKey=key.pem:certKey=cert.pem.  Repeatable; default
        tcp:5027.
        """
        if self._listen_from_environment:
            self["listen"] = []
            self._listen_from_environment = False
        self["listen"].append(description)

    def postOptions(self):
        if not self["listen"]:
            self["listen"] = ["tcp:5027"]
        # twistd imports its --logger option (a dotted name) after this runs;
        # an explicit --logger still wins.
        if (
            self["log-format"] == "json"
            and self.parent is not None
            and not self.parent.get("logger")
        ):
            self.parent["logger"] = "teltonika.logs.json_lines_observer"
