"""teltonika-sim: run a fleet of simulated trackers against a server."""

import argparse
import resource
import signal
import sys

from twisted.internet import task
from twisted.internet.task import LoopingCall

from teltonika.gctuning import tune_for_throughput
from teltonika.sim.config import CODEC_CHOICES, Config
from teltonika.sim.fleet import Fleet
from teltonika.sim.imeis import DEFAULT_PREFIX, make_imeis, read_imeis


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="teltonika-sim",
        description="A fleet of simulated Teltonika trackers in one process.",
    )
    defaults = Config()
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="server address (default: %(default)s)")
    add("--port", type=int, default=5027, help="server TCP port (default: %(default)s)")
    add(
        "--devices", type=int, help="number of trackers (default: 1, or all of --imeis)"
    )
    add(
        "--imei-prefix",
        default=DEFAULT_PREFIX,
        help="generated IMEIs start with these digits (default: %(default)s)",
    )
    add(
        "--imeis",
        metavar="FILE",
        help="IMEIs to use, one a line, instead of generating",
    )
    add(
        "--ramp",
        type=float,
        default=defaults.ramp,
        help="devices powered on per second (default: %(default)s)",
    )
    add(
        "--period",
        type=float,
        default=defaults.period,
        help="seconds between frames (default: %(default)s)",
    )
    add(
        "--records",
        type=int,
        default=defaults.records,
        help="records per frame, 1-255 (default: %(default)s)",
    )
    add(
        "--codec",
        choices=CODEC_CHOICES,
        default=defaults.codec,
        help="AVL codec; mix spreads 8, 8E, 16 over devices (default: %(default)s)",
    )
    add(
        "--ack-timeout",
        type=float,
        default=defaults.ack_timeout,
        help="seconds to wait for an ACK before resending (default: %(default)s)",
    )
    add(
        "--answer-delay",
        type=float,
        default=defaults.answer_delay,
        help="seconds before answering a command (default: %(default)s)",
    )
    add(
        "--backoff-initial",
        type=float,
        default=defaults.backoff_initial,
        help="first reconnect delay, seconds (default: %(default)s)",
    )
    add(
        "--backoff-max",
        type=float,
        default=defaults.backoff_max,
        help="longest reconnect delay, seconds (default: %(default)s)",
    )
    add("--duration", type=float, help="stop after this many seconds")
    add("--frames", type=int, help="each device stops once this many frames are ACKed")
    add("--seed", type=int, help="seed for reproducible records")
    add("--stats", action="store_true", help="print a summary at the end")
    add(
        "--progress",
        type=float,
        nargs="?",
        const=5.0,
        metavar="SECONDS",
        help="print the summary every SECONDS (default 5) while running",
    )
    args = parser.parse_args(argv)
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be positive")
    if args.devices is not None and args.devices < 1:
        parser.error("--devices must be at least 1")
    if args.progress is not None and args.progress <= 0:
        parser.error("--progress must be positive")
    try:
        args.config = Config(
            period=args.period,
            records=args.records,
            codec=args.codec,
            ack_timeout=args.ack_timeout,
            answer_delay=args.answer_delay,
            backoff_initial=args.backoff_initial,
            backoff_max=args.backoff_max,
            ramp=args.ramp,
            frames=args.frames,
            seed=args.seed,
        )
        args.imei_list = _imeis(args)
    except (ValueError, OSError) as error:
        parser.error(str(error))
    return args


def _imeis(args):
    if args.imeis is None:
        return make_imeis(args.devices or 1, args.imei_prefix)
    imeis = read_imeis(args.imeis)
    if args.devices is None:
        return imeis
    if args.devices > len(imeis):
        raise ValueError(f"{args.imeis} has {len(imeis)} IMEIs, not {args.devices}")
    return imeis[: args.devices]


def raise_file_limit():
    """Each device is a socket: allow as many as the hard limit does."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def run(reactor, args):
    limit = raise_file_limit()
    if len(args.imei_list) > limit - 50:
        print(
            f"warning: {len(args.imei_list)} devices, but only {limit} file"
            " descriptors",
            file=sys.stderr,
        )
    fleet = Fleet(reactor, args.host, args.port, args.imei_list, args.config)
    started = reactor.seconds()

    def report():
        print(fleet.stats.format(reactor.seconds() - started), flush=True)

    progress = None
    if args.progress is not None:
        progress = LoopingCall(report)
        progress.clock = reactor
        progress.start(args.progress, now=False)
    if args.duration is not None:
        reactor.callLater(args.duration, fleet.stop)
    # Ctrl-C or SIGTERM: stop the devices cleanly so the summary is complete.
    reactor.callWhenRunning(_on_signals, reactor, fleet.stop)
    await fleet.start()
    if progress is not None:
        progress.stop()
    if args.stats:
        report()


def _on_signals(reactor, stop):
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: reactor.callFromThread(stop))


def main(argv=None):
    args = parse_args(argv)
    # The simulator measures ACK latency: its own collector pauses must not
    # show up in the figures as the server's.
    tune_for_throughput()
    task.react(run, (args,))
