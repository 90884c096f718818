"""Measure how many simulated devices one teltonika-sim process holds.

Starts the minimal server (tests/sim_server.py) and `teltonika-sim` as two
processes on loopback, lets the fleet ramp up and run, and samples the
simulator's RSS and CPU from /proc once the ramp is over.  Not part of the
test suite (a 10,000-device run takes minutes); run by hand:

    /work/venv/bin/python bench/sim_capacity.py --devices 10000 --period 10
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--period", type=float, default=10.0)
    parser.add_argument("--records", type=int, default=1)
    parser.add_argument("--ramp", type=float, default=1000.0)
    parser.add_argument("--steady", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--port", type=int, default=15027)
    args = parser.parse_args()

    ramp_seconds = args.devices / args.ramp
    duration = ramp_seconds + args.period + args.steady + 5
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "sim_server.py"),
            "--port",
            str(args.port),
        ]
    )
    time.sleep(1)  # let it bind
    sim = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from teltonika.sim.cli import main; main()",
            "--port",
            str(args.port),
            "--devices",
            str(args.devices),
            "--ramp",
            str(args.ramp),
            "--period",
            str(args.period),
            "--records",
            str(args.records),
            "--codec",
            "mix",
            "--duration",
            str(duration),
            "--progress",
            "10",
            "--stats",
        ]
    )
    try:
        time.sleep(ramp_seconds + args.period)  # every device on and sending
        start_cpu, start_server_cpu = cpu_seconds(sim.pid), cpu_seconds(server.pid)
        start = time.monotonic()
        time.sleep(args.steady)
        elapsed = time.monotonic() - start
        sim_cpu = (cpu_seconds(sim.pid) - start_cpu) / elapsed
        server_cpu = (cpu_seconds(server.pid) - start_server_cpu) / elapsed
        print(
            f"devices={args.devices} period={args.period}s records={args.records}"
            f" sim RSS={rss_mib(sim.pid):.0f} MiB"
            f" ({rss_mib(sim.pid) * 1024 / args.devices:.1f} KiB/device)"
            f" sim CPU={sim_cpu:.0%} server CPU={server_cpu:.0%}"
            f" server RSS={rss_mib(server.pid):.0f} MiB",
            flush=True,
        )
        code = sim.wait()
        print(f"teltonika-sim exited {code}")
    finally:
        sim.kill()
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
