"""Server options: flags, TELTONIKA_* variables, and plain refusals."""

import pytest
from twisted.python import usage

from teltonika.options import Options


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("TELTONIKA_REDIS", "TELTONIKA_LISTEN", "TELTONIKA_MAX_FRAME"):
        monkeypatch.delenv(name, raising=False)


def parse(*args):
    options = Options()
    options.parseOptions(list(args))
    return options


def test_defaults():
    options = parse()
    assert options["listen"] == ["tcp:5027"]
    assert options["redis"] == "embedded"
    assert options["authority"] == "allowlist"
    assert options["health"] == "tcp:9027:interface=127.0.0.1"
    assert (options["login-timeout"], options["idle-timeout"]) == (30.0, 600.0)
    assert options["max-frame"] == 65536


def test_environment_gives_defaults_and_flags_win(monkeypatch):
    monkeypatch.setenv("TELTONIKA_REDIS", "redis://redis.internal/1")
    monkeypatch.setenv("TELTONIKA_MAX_FRAME", "2048")
    monkeypatch.setenv("TELTONIKA_LISTEN", "tcp:5027 tcp:5028")
    options = parse()
    assert options["redis"] == "redis://redis.internal/1"
    assert options["max-frame"] == 2048
    assert options["listen"] == ["tcp:5027", "tcp:5028"]
    options = parse("--max-frame", "4096", "--listen", "tcp:6000")
    assert options["max-frame"] == 4096
    assert options["listen"] == ["tcp:6000"]


@pytest.mark.parametrize(
    "args, complaint",
    [
        (("--authority", "anyone"), "allowlist, open"),
        (("--max-frame", "0"), "above 0, not '0'"),
        (("--login-timeout", "nan"), "above 0"),
        (("--idle-timeout", "soon"), "above 0, not 'soon'"),
        (("--log-format", "xml"), "text, json"),
        (("--janitor-interval", "-1"), "0 or more, not '-1'"),
        (("--janitor-interval", "nan"), "0 or more"),
    ],
)
def test_bad_values_are_refused_plainly(args, complaint):
    with pytest.raises(usage.UsageError, match=complaint):
        parse(*args)


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("TELTONIKA_MAX_FRAME", "big")
    with pytest.raises(usage.UsageError, match="TELTONIKA_MAX_FRAME"):
        Options()
