"""End-to-end speed of the ingestion server: records/s, CPU, RSS, ACK latency.

Starts the real server (`twistd -n teltonika`, embedded Redis, open
authority) and, as a separate process, a fleet of simulated trackers
(teltonika.sim's Fleet, driven by this same file with --drive so that the
ramp can be left out of the figures), both on 127.0.0.1.  Every run gets a
fresh server and state directory.  Scenarios:

throughput  1,000 devices x 10 records a frame, the period stepped down until
            the ACKs no longer keep up; the best run that kept up is the max.
latency     the same fleet at half the max: ACK latency p50/p99.
capacity    10,000 devices logged in at a slow period: server RSS per socket.

Not part of the test suite (all three take about five minutes); run by hand:

    /work/venv/bin/python bench/ingest_bench.py --scenario all
"""

import argparse
import contextlib
import json
import os
import queue
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TWISTD = Path(sys.executable).with_name("twistd")
TICKS = os.sysconf("SC_CLK_TCK")
STREAM = "telemetry:avl"

THROUGHPUT_DEVICES = 1_000
THROUGHPUT_RECORDS = 10
# 10,000 to 40,000 records/s offered by 1,000 devices x 10 records.
THROUGHPUT_PERIODS = (1.0, 0.8, 0.5, 0.4, 0.33, 0.25)
# An ACK rate within 5% of the offered rate keeps up; below, devices buffer.
KEEPS_UP = 0.95
CAPACITY_DEVICES = 10_000
CAPACITY_PERIOD = 60.0

GOAL_RECORDS_PER_SECOND = 25_000
GOAL_P99_SECONDS = 0.020
GOAL_KIB_PER_CONNECTION = 10


# /proc -------------------------------------------------------------------


def cpu_seconds(pid):
    """user + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def children(pid):
    return [
        int(child)
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    ]


def raise_file_limit():
    """One socket per device: let the process open as many as the hard limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The server --------------------------------------------------------------


class Server:
    """`twistd -n teltonika` with its embedded Redis in a fresh directory."""

    def __init__(self, workdir):
        self.state_dir = Path(workdir) / "state"
        self.port = free_port()
        self.health_port = free_port()
        self.log_path = Path(workdir) / "server.log"
        self.process = None

    def start(self, timeout=60.0):
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    str(TWISTD),
                    "-n",
                    "--pidfile=",
                    "teltonika",
                    "--authority",
                    "open",
                    "--redis",
                    "embedded",
                    "--state-dir",
                    str(self.state_dir),
                    "--listen",
                    f"tcp:{self.port}:interface=127.0.0.1",
                    "--health",
                    f"tcp:{self.health_port}:interface=127.0.0.1",
                    # No trimming: XLEN must count every record of the run.
                    "--telemetry-maxlen",
                    "100000000",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=raise_file_limit,
            )
        deadline = time.monotonic() + timeout
        while self._ready_status() != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server not ready; see {self.log_path}")
            time.sleep(0.1)

    def _ready_status(self):
        url = f"http://127.0.0.1:{self.health_port}/ready"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return None

    def connections(self):
        url = f"http://127.0.0.1:{self.health_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith("teltonika_connections "):
                    return int(float(line.split()[1]))
        raise RuntimeError("no teltonika_connections in /metrics")

    @property
    def redis_pid(self):
        (pid,) = children(self.process.pid)
        return pid

    def stream_length(self):
        import redis

        client = redis.Redis(unix_socket_path=str(self.state_dir / "redis.sock"))
        try:
            return client.xlen(STREAM)
        finally:
            client.close()

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        redis_pids = children(self.process.pid)
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        # A server killed before it could stop its Redis leaves it orphaned.
        for pid in redis_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


# The simulator, driven from its own process ------------------------------


class Driver:
    """This file run with --drive: a Fleet that reports as JSON lines."""

    def __init__(self, port, **settings):
        settings["port"] = port
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--drive", json.dumps(settings)],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=raise_file_limit,
        )
        self._events = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self._events.put(json.loads(line))
        self._events.put({"event": "exited"})

    def expect(self, name, timeout):
        event = self._events.get(timeout=timeout)
        if event["event"] != name:
            raise RuntimeError(f"simulator said {event}, expected {name!r}")
        return event

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def drive(settings):
    """The simulator process: ramp, settle, measure a window, stop, report."""
    from twisted.internet import task

    task.react(_drive, (settings,))


async def _drive(reactor, settings):
    from twisted.internet.task import deferLater

    from teltonika.sim.config import Config
    from teltonika.sim.fleet import Fleet
    from teltonika.sim.imeis import make_imeis
    from teltonika.sim.stats import LatencyHistogram

    def say(event, **values):
        print(json.dumps({"event": event, **values}), flush=True)

    def sleep(seconds):
        return deferLater(reactor, seconds, lambda: None)

    devices = settings["devices"]
    config = Config(
        period=settings["period"],
        records=settings["records"],
        codec="mix",
        ramp=settings["ramp"],
        seed=1,
    )
    fleet = Fleet(reactor, "127.0.0.1", settings["port"], make_imeis(devices), config)
    stats = fleet.stats
    done = fleet.start()
    ramp_deadline = reactor.seconds() + devices / config.ramp + 30
    while stats.logins < devices:
        if reactor.seconds() > ramp_deadline:
            say("error", reason=f"only {stats.logins} of {devices} logged in")
            fleet.stop()
            await done
            return
        await sleep(0.1)
    say("logged_in", logins=stats.logins)
    await sleep(settings["settle"])
    stats.ack_latency = LatencyHistogram()  # leave the ramp out of the figures
    acked, records, started = stats.records_acked, stats.records, reactor.seconds()
    say("window_start")
    await sleep(settings["window"])
    elapsed = reactor.seconds() - started
    say(
        "window_end",
        seconds=elapsed,
        records_acked=stats.records_acked - acked,
        records_generated=stats.records - records,
        ack_p50=stats.ack_latency.percentile(0.50),
        ack_p99=stats.ack_latency.percentile(0.99),
        resent=stats.frames_resent,
        disconnects=stats.disconnects,
    )
    fleet.stop()
    await done
    say("stopped", records_acked=stats.records_acked, summary=stats.format())


# One run -----------------------------------------------------------------


@dataclass
class Run:
    """What one run measured; rates are over the steady window."""

    name: str
    devices: int
    period: float
    records: int
    offered: float  # records/s the fleet generates
    acked: float  # records/s ACKed (simulator)
    stored: float  # records/s added to the stream (XLEN)
    total_acked: int
    total_stored: int
    server_cpu: float  # fraction of one core
    redis_cpu: float
    simulator_cpu: float
    server_rss_mib: float
    ack_p50: float | None
    ack_p99: float | None
    resent: int
    disconnects: int

    @property
    def keeps_up(self):
        return self.acked >= KEEPS_UP * self.offered

    @property
    def all_acked_stored(self):
        return self.total_stored >= self.total_acked

    def line(self):
        return (
            f"{self.name}: devices={self.devices} period={self.period}s"
            f" records/frame={self.records} offered={self.offered:,.0f}/s"
            f" ACKed={self.acked:,.0f}/s stored={self.stored:,.0f}/s"
            f" | run totals ACKed={self.total_acked:,} XLEN={self.total_stored:,}"
            f" ({'all ACKed stored' if self.all_acked_stored else 'RECORDS MISSING'})"
            f" | CPU server={self.server_cpu:.0%} redis={self.redis_cpu:.0%}"
            f" simulator={self.simulator_cpu:.0%}"
            f" RSS={self.server_rss_mib:.0f} MiB"
            f" | ACK p50={_ms(self.ack_p50)} p99={_ms(self.ack_p99)}"
            f" resent={self.resent} disconnects={self.disconnects}"
            f" | {'keeps up' if self.keeps_up else 'saturated'}"
        )


def _ms(seconds):
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def load_run(name, devices, period, records, settle, window):
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as workdir:
        server = Server(workdir)
        driver = None
        try:
            server.start()
            driver = Driver(
                server.port,
                devices=devices,
                period=period,
                records=records,
                ramp=1000,
                settle=settle,
                window=window,
            )
            driver.expect("logged_in", timeout=devices / 1000 + 60)
            driver.expect("window_start", timeout=settle + 30)
            pids = (server.process.pid, server.redis_pid, driver.process.pid)
            cpu_before = [cpu_seconds(pid) for pid in pids]
            stored_before = server.stream_length()
            started = time.monotonic()
            end = driver.expect("window_end", timeout=window + 30)
            elapsed = time.monotonic() - started
            cpu = [
                (cpu_seconds(pid) - before) / elapsed
                for pid, before in zip(pids, cpu_before, strict=True)
            ]
            stored = (server.stream_length() - stored_before) / elapsed
            rss = rss_kib(server.process.pid) / 1024
            stopped = driver.expect("stopped", timeout=60)
            return Run(
                name=name,
                devices=devices,
                period=period,
                records=records,
                offered=devices * records / period,
                acked=end["records_acked"] / end["seconds"],
                stored=stored,
                total_acked=stopped["records_acked"],
                total_stored=server.stream_length(),
                server_cpu=cpu[0],
                redis_cpu=cpu[1],
                simulator_cpu=cpu[2],
                server_rss_mib=rss,
                ack_p50=end["ack_p50"],
                ack_p99=end["ack_p99"],
                resent=end["resent"],
                disconnects=end["disconnects"],
            )
        finally:
            if driver is not None:
                driver.stop()
            server.stop()


# Scenarios ---------------------------------------------------------------


def throughput(args):
    runs = []
    for period in THROUGHPUT_PERIODS:
        run = load_run(
            "throughput",
            THROUGHPUT_DEVICES,
            period,
            THROUGHPUT_RECORDS,
            args.settle,
            args.window,
        )
        print(run.line(), flush=True)
        runs.append(run)
        if not run.keeps_up:
            break
    kept_up = [run for run in runs if run.keeps_up]
    best = max(kept_up or runs, key=lambda run: run.acked)
    return runs, best


def latency(args, max_rate):
    period = THROUGHPUT_DEVICES * THROUGHPUT_RECORDS / (max_rate / 2)
    run = load_run(
        "latency",
        THROUGHPUT_DEVICES,
        round(period, 3),
        THROUGHPUT_RECORDS,
        args.settle,
        args.window,
    )
    print(run.line(), flush=True)
    return run


@dataclass
class Capacity:
    devices: int
    connections: int
    rss_before_mib: float
    rss_after_mib: float
    redis_rss_mib: float

    @property
    def kib_per_connection(self):
        return (self.rss_after_mib - self.rss_before_mib) * 1024 / self.devices

    def line(self):
        return (
            f"capacity: devices={self.devices} server sockets={self.connections:,}"
            f" RSS before={self.rss_before_mib:.1f} MiB"
            f" after={self.rss_after_mib:.1f} MiB"
            f" -> {self.kib_per_connection:.2f} KiB per connection"
            f" (redis-server RSS {self.redis_rss_mib:.0f} MiB)"
        )


def capacity(args):
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as workdir:
        server = Server(workdir)
        driver = None
        try:
            server.start()
            time.sleep(1)  # let the freshly started server settle
            before = rss_kib(server.process.pid) / 1024
            driver = Driver(
                server.port,
                devices=CAPACITY_DEVICES,
                period=CAPACITY_PERIOD,
                records=1,
                ramp=1000,
                settle=args.settle,
                window=5,
            )
            driver.expect("logged_in", timeout=CAPACITY_DEVICES / 1000 + 60)
            driver.expect("window_start", timeout=args.settle + 30)
            result = Capacity(
                devices=CAPACITY_DEVICES,
                connections=server.connections(),
                rss_before_mib=before,
                rss_after_mib=rss_kib(server.process.pid) / 1024,
                redis_rss_mib=rss_kib(server.redis_pid) / 1024,
            )
            driver.expect("window_end", timeout=60)
            driver.expect("stopped", timeout=60)
            print(result.line(), flush=True)
            return result
        finally:
            if driver is not None:
                driver.stop()
            server.stop()


def machine():
    model = next(
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    )
    memory = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return (
        f"{os.cpu_count()} x {model}, {memory / 1024**2:.0f} GiB RAM,"
        f" Python {sys.version.split()[0]}"
    )


def verdict(met):
    return "MET" if met else "MISSED"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenario",
        choices=("throughput", "latency", "capacity", "all"),
        default="all",
    )
    parser.add_argument(
        "--max-rate",
        type=float,
        help="records/s the latency run halves, instead of running throughput",
    )
    parser.add_argument(
        "--settle", type=float, default=5.0, help="seconds after the ramp, unmeasured"
    )
    parser.add_argument(
        "--window", type=float, default=20.0, help="seconds measured per run"
    )
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        drive(json.loads(args.drive))
        return

    summary = [f"machine: {machine()}"]
    max_rate = args.max_rate
    if args.scenario in ("throughput", "all"):
        runs, best = throughput(args)
        max_rate = best.acked
        summary += [run.line() for run in runs]
        summary.append(
            f"max sustained: {best.acked:,.0f} records/s ACKed"
            f" ({best.stored:,.0f}/s stored), goal >= {GOAL_RECORDS_PER_SECOND:,}:"
            f" {verdict(best.keeps_up and best.acked >= GOAL_RECORDS_PER_SECOND)}"
        )
    if args.scenario in ("latency", "all"):
        if max_rate is None:
            parser.error("--scenario latency needs --max-rate (or run throughput)")
        run = latency(args, max_rate)
        summary.append(run.line())
        summary.append(
            f"ACK p99 at half the max ({run.offered:,.0f} records/s):"
            f" {_ms(run.ack_p99)}, goal < {_ms(GOAL_P99_SECONDS)}:"
            f" {verdict(run.ack_p99 is not None and run.ack_p99 < GOAL_P99_SECONDS)}"
        )
    if args.scenario in ("capacity", "all"):
        result = capacity(args)
        summary.append(result.line())
        summary.append(
            f"{result.kib_per_connection:.2f} KiB per connection, goal <="
            f" {GOAL_KIB_PER_CONNECTION} KiB:"
            f" {verdict(result.kib_per_connection <= GOAL_KIB_PER_CONNECTION)}"
        )
    print("\n===== ingest bench =====")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
