"""The fleet's shared ticker, connect ramp and completion, the stats, and the
CLI's option checks: all without a network."""

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock

from teltonika.sim.cli import parse_args, raise_file_limit
from teltonika.sim.config import Config
from teltonika.sim.fleet import Fleet
from teltonika.sim.imeis import make_imeis
from teltonika.sim.stats import LatencyHistogram, Stats
from teltonika.sim.ticker import Ticker


class Counter:
    def __init__(self, clock):
        self.clock = clock
        self.ticks = []
        self.imei = "352093081452251"

    def tick(self):
        self.ticks.append(self.clock.seconds())


class Broken(Counter):
    def tick(self):
        super().tick()
        raise RuntimeError("boom")


def test_ticker_ticks_each_device_once_a_period_spread_over_buckets():
    clock = Clock()
    ticker = Ticker(clock, period=1.0, interval=0.125)
    devices = [Counter(clock) for _ in range(24)]
    for device in devices:
        ticker.add(device)
    ticker.start()
    clock.pump([0.125] * 24)
    for device in devices:
        assert len(device.ticks) == 3
        assert device.ticks[1] - device.ticks[0] == pytest.approx(1.0)
    first_ticks = [d.ticks[0] for d in devices]
    per_bucket = {first_ticks.count(t) for t in first_ticks}
    assert per_bucket == {3}  # 24 devices over 8 buckets


def test_ticker_keeps_going_when_a_device_raises():
    clock = Clock()
    ticker = Ticker(clock, period=0.2, interval=0.1)
    broken, fine = Broken(clock), Counter(clock)
    ticker.add(broken)
    ticker.add(fine)
    ticker.start()
    clock.pump([0.1] * 4)
    assert len(broken.ticks) == len(fine.ticks) == 2


def test_ticker_remove_and_catch_up_after_a_stall():
    clock = Clock()
    ticker = Ticker(clock, period=0.5, interval=0.1)
    gone, kept = Counter(clock), Counter(clock)
    ticker.add(gone)
    ticker.add(kept)
    ticker.remove(gone)
    ticker.remove(gone)  # twice: harmless
    ticker.start()
    clock.advance(10)  # one late call covering 100 intervals
    assert len(kept.ticks) == 1
    assert gone.ticks == []


def test_ramp_powers_devices_on_gradually():
    reactor = MemoryReactorClock()
    fleet = Fleet(reactor, "sim.test", 5027, make_imeis(100), Config(ramp=40))
    fleet.start()
    assert len(reactor.tcpClients) == 2  # 40/s in 0.05 s steps
    reactor.pump([0.05] * 20)
    assert len(reactor.tcpClients) == 42
    reactor.pump([0.05] * 40)
    assert len(reactor.tcpClients) == 100
    assert fleet.stats.devices_started == 100


def test_stop_before_everyone_is_on_finishes_the_fleet():
    reactor = MemoryReactorClock()
    fleet = Fleet(reactor, "sim.test", 5027, make_imeis(10), Config(ramp=20))
    done = fleet.start()
    for connector, (_, _, factory, _, _) in zip(
        reactor.connectors, reactor.tcpClients, strict=True
    ):
        connector.stopConnecting = lambda f=factory, c=connector: (
            f.clientConnectionFailed(c, None)
        )
    fleet.stop()
    assert done.called
    assert done.result is fleet.stats
    assert fleet.stats.devices_done == 10
    assert reactor.getDelayedCalls() == []


def test_empty_fleet_is_done_at_once():
    fleet = Fleet(MemoryReactorClock(), "sim.test", 5027, [])
    assert fleet.start().called


def test_mix_spreads_codecs_and_devices_are_reachable_by_imei():
    imeis = make_imeis(6)
    fleet = Fleet(MemoryReactorClock(), "sim.test", 5027, imeis, Config(codec="mix"))
    assert [d.codec for d in fleet.devices] == ["8", "8E", "16"] * 2
    assert fleet.device(imeis[4]).imei == imeis[4]


def test_duplicate_imeis_are_refused():
    with pytest.raises(ValueError, match="given twice"):
        Fleet(MemoryReactorClock(), "sim.test", 5027, ["352093081452251"] * 2)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"records": 0}, "records must be 1 to 255"),
        ({"records": 256}, "records must be 1 to 255"),
        ({"codec": "12"}, "codec must be one of"),
        ({"period": 0}, "period must be positive"),
        ({"ramp": -1}, "ramp must be positive"),
        ({"answer_delay": -1}, "answer_delay must not be negative"),
        ({"backoff_initial": 5, "backoff_max": 1}, "backoff_max must be at least"),
        ({"frames": 0}, "frames must be at least 1"),
    ],
)
def test_bad_config(settings, message):
    with pytest.raises(ValueError, match=message):
        Config(**settings)


def test_latency_percentiles_are_within_two_percent():
    histogram = LatencyHistogram()
    assert histogram.percentile(0.5) is None
    for millisecond in range(1, 1001):
        histogram.add(millisecond / 1000)
    assert histogram.percentile(0.5) == pytest.approx(0.5, rel=0.02)
    assert histogram.percentile(0.99) == pytest.approx(0.99, rel=0.02)
    histogram.add(0)
    assert histogram.count == 1001


def test_stats_summary():
    stats = Stats()
    stats.frames_sent = 3
    stats.ack_latency.add(0.002)
    assert stats.as_dict()["frames_sent"] == 3
    assert stats.as_dict()["ack_latency_p99"] == pytest.approx(0.002, rel=0.02)
    line = stats.format(elapsed=1.5)
    assert line.startswith("t=1.5s ")
    assert "frames sent=3" in line
    assert "ack p50=2.0ms" in line
    assert "wrong acks" not in line
    stats.wrong_acks = 1
    assert "wrong acks=1" in stats.format()


def test_cli_options_make_a_config():
    argv = "--devices 3 --codec 16 --records 4 --period 2 --frames 5 --imei-prefix 1234"
    args = parse_args(argv.split(" "))
    assert args.config.codec == "16"
    assert (args.config.records, args.config.period, args.config.frames) == (4, 2, 5)
    assert args.imei_list == make_imeis(3, "1234")


def test_cli_imeis_file(tmp_path):
    path = tmp_path / "imeis"
    path.write_text("352093081452251\n490154203237518\n")
    assert parse_args(["--imeis", str(path)]).imei_list == [
        "352093081452251",
        "490154203237518",
    ]
    assert parse_args(["--imeis", str(path), "--devices", "1"]).imei_list == [
        "352093081452251"
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--records", "0"], "records must be 1 to 255"),
        (["--codec", "9"], "invalid choice"),
        (["--devices", "0"], "--devices must be at least 1"),
        (["--duration", "0"], "--duration must be positive"),
        (["--progress", "-1"], "--progress must be positive"),
        (["--imeis", "/nonexistent/imeis"], "No such file"),
        (["--imei-prefix", "x"], "0 to 13 digits"),
    ],
)
def test_cli_rejects(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_more_devices_than_the_file_has(tmp_path, capsys):
    path = tmp_path / "imeis"
    path.write_text("352093081452251\n")
    with pytest.raises(SystemExit):
        parse_args(["--imeis", str(path), "--devices", "2"])
    assert "has 1 IMEIs, not 2" in capsys.readouterr().err


def test_file_limit_is_raised_to_the_hard_limit():
    import resource

    hard = raise_file_limit()
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
