"""The standalone janitor: its options, its service, and `twistd teltonika-janitor`."""

import os
import sys

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor
from twisted.python import usage

from teltonika import keys
from teltonika.janitor import JanitorRun
from teltonika.janitor_tap import Options, makeService

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for variable in (
        "TELTONIKA_REDIS",
        "TELTONIKA_JANITOR_INTERVAL",
        "TELTONIKA_INSTANCE_ID",
    ):
        monkeypatch.delenv(variable, raising=False)


def parse(*args):
    options = Options()
    options.parseOptions(list(args))
    return options


def test_options_defaults():
    options = parse("--redis", "unix:///run/redis.sock")
    assert options["janitor-interval"] == 30.0
    assert options["instance-id"]


def test_options_from_the_environment_and_the_command_line_wins(monkeypatch):
    monkeypatch.setenv("TELTONIKA_REDIS", "redis://redis.internal/2")
    monkeypatch.setenv("TELTONIKA_JANITOR_INTERVAL", "12.5")
    monkeypatch.setenv("TELTONIKA_INSTANCE_ID", "janitor-1")
    options = parse()
    assert (options["redis"], options["janitor-interval"], options["instance-id"]) == (
        "redis://redis.internal/2",
        12.5,
        "janitor-1",
    )
    options = parse("--janitor-interval", "5", "--instance-id", "j2")
    assert (options["janitor-interval"], options["instance-id"]) == (5.0, "j2")


@pytest.mark.parametrize(
    "args, environment, complaint",
    [
        ((), {}, "--redis"),
        (("--redis", "http://h"), {}, "scheme"),
        (("--redis", "unix:///s", "--janitor-interval", "0"), {}, "above 0"),
        (
            ("--redis", "unix:///s", "--janitor-interval", "soon"),
            {},
            "above 0, not 'soon'",
        ),
        (("--redis", "unix:///s", "--janitor-interval", "nan"), {}, "above 0"),
        (
            ("--redis", "unix:///s"),
            {"TELTONIKA_JANITOR_INTERVAL": "-1"},
            "TELTONIKA_JANITOR_INTERVAL",
        ),
    ],
)
def test_options_refused(monkeypatch, args, environment, complaint):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(usage.UsageError, match=complaint):
        parse(*args)


@pytest_twisted.inlineCallbacks
def test_service_runs_at_start_and_closes_its_connection(redis_server, redis_db):
    redis_db.xadd(keys.outbound("ghost"), {"command_id": "c1", "imei": "1" * 15})
    service = makeService(parse("--redis", redis_server.url, "--instance-id", "j"))
    service.startService()
    try:
        run = yield service.janitor.last_run
    finally:
        yield service.stopService()
    assert run == JanitorRun(True, ("ghost",), commands_failed=1, streams_deleted=1)
    assert redis_db.xlen(keys.COMMAND_RESPONSES) == 1
    assert list(service) == []


class Twistd(protocol.ProcessProtocol):
    """Fires C{seen} once the output contains C{text}, C{ended} at exit."""

    def __init__(self, text):
        self.text = text.encode()
        self.output = b""
        self.seen = defer.Deferred()
        self.ended = defer.Deferred()

    def outReceived(self, data):
        self.output += data
        if self.text in self.output and not self.seen.called:
            self.seen.callback(None)

    errReceived = outReceived

    def processEnded(self, reason):
        self.ended.callback(None)


@pytest_twisted.inlineCallbacks
def test_twistd_runs_the_plugin(redis_server, redis_db, tmp_path):
    redis_db.xadd(keys.outbound("ghost"), {"command_id": "c1", "imei": "1" * 15})
    twistd = Twistd("instances gone: ghost")
    environment = {**os.environ, "TELTONIKA_REDIS": redis_server.url}
    process = reactor.spawnProcess(
        twistd,
        TWISTD,
        [TWISTD, "-n", "--pidfile=", "teltonika-janitor", "--janitor-interval", "60"],
        env=environment,
        path=str(tmp_path),
    )
    try:
        yield twistd.seen.addTimeout(30, reactor)
    finally:
        process.signalProcess("TERM")
        yield twistd.ended
    assert not redis_db.exists(keys.outbound("ghost"))
    assert redis_db.xrange(keys.COMMAND_RESPONSES)[0][1]["reason"] == "instance_gone"
