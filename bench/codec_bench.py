"""Records per second decoding and encoding the corpus's valid TCP frames.

Runs on one core: ``python bench/codec_bench.py``.  For each of the Codec 8,
8E and 16 sets it repeats the set for ``--seconds`` of CPU time and reports
the whole run's records per CPU-second of the measuring process, and per
wall-clock second beside it.  CPU time is the figure to compare: other
processes sharing the machine stretch the wall-clock time, not the work.
Before timing, each set runs untimed for a fifth of a CPU-second, so that
caches (ours, node's compiled code) are warm.

When ``node`` and the npm package complete-teltonika-parser are available
(``--node-modules DIR`` or $TELTONIKA_BENCH_NODE_MODULES, a node_modules
directory holding it; install with ``npm install --prefix /tmp/ctp
complete-teltonika-parser``), the same frames are also decoded by that parser
in the same run, and our decoding speed is printed as a ratio to it.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from teltonika.codec import decode_frame, encode_avl

VECTORS = Path(__file__).parent.parent / "tests" / "vectors" / "teltonika_vectors.json"
KINDS = {"codec8": "8", "codec8e": "8E", "codec16": "16"}
NODE_PACKAGE = "complete-teltonika-parser"


def corpus_sets():
    """codec -> the corpus's well-formed, standard TCP frames of that codec."""
    sets = {codec: [] for codec in KINDS.values()}
    for vector in json.loads(VECTORS.read_text()):
        if (
            vector["kind"] in KINDS
            and vector.get("crc_ok") is True
            and vector.get("length_ok") is True
            and vector.get("structure_ok") is True
            and "NON-STANDARD" not in vector.get("notes", "")
        ):
            sets[KINDS[vector["kind"]]].append(bytes.fromhex(vector["hex"]))
    return sets


WARM_UP = 0.2  # CPU-seconds of untimed work before each measurement


def rate(work, records_per_round, seconds):
    """Records per CPU-second and per wall-clock second of ``work()``, which
    handles ``records_per_round`` records, repeated for ``seconds`` of CPU
    time after a warm-up."""
    warm_until = time.process_time() + WARM_UP
    while time.process_time() < warm_until:
        work()
    rounds = 0
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    while (cpu := time.process_time() - cpu_start) < seconds:
        work()
        rounds += 1
    wall = time.perf_counter() - wall_start
    return rounds * records_per_round / cpu, rounds * records_per_round / wall


def our_rates(frames, seconds):
    """(records in ``frames``, decoding rates, encoding rates), each pair of
    rates as ``rate`` gives them."""
    packets = [decode_frame(frame) for frame in frames]
    count = sum(len(packet.records) for packet in packets)

    def decode_all():
        for frame in frames:
            decode_frame(frame)

    def encode_all():
        for packet in packets:
            encode_avl(packet.codec, packet.records)

    return count, rate(decode_all, count, seconds), rate(encode_all, count, seconds)


NODE_SCRIPT = """
const { ProtocolParser } = require(process.argv[2]);
const sets = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const seconds = Number(process.argv[3]);
const warmUp = Number(process.argv[4]);
// CPU seconds (user + system) of this process since ``start``.
const cpuSince = (start) => {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
};
const out = {};
for (const [codec, frames] of Object.entries(sets)) {
  let failed = 0;
  for (const hex of frames) {
    try { new ProtocolParser(hex); } catch (e) { failed += 1; }
  }
  const decodeAll = () => {
    let records = 0;
    for (const hex of frames) {
      try { records += new ProtocolParser(hex).Content.AVL_Datas.length; }
      catch (e) {}
    }
    return records;
  };
  const warmStart = process.cpuUsage();
  while (cpuSince(warmStart) < warmUp) decodeAll();
  let records = 0;
  let cpu = 0;
  const cpuStart = process.cpuUsage();
  const wallStart = process.hrtime.bigint();
  while ((cpu = cpuSince(cpuStart)) < seconds) records += decodeAll();
  const wall = Number(process.hrtime.bigint() - wallStart) / 1e9;
  out[codec] = { cpu_rate: records / cpu, wall_rate: records / wall, failed: failed };
}
console.log(JSON.stringify(out));
"""


def node_rates(node_modules, sets, seconds):
    """codec -> {"cpu_rate", "wall_rate", "failed"} from the npm parser (records
    per CPU-second and per wall-clock second, frames it rejects), or the
    reason it was not timed."""
    node = shutil.which("node")
    if node is None:
        return "node is not installed"
    if node_modules is None:
        return (
            f"no node_modules given (--node-modules or "
            f"$TELTONIKA_BENCH_NODE_MODULES) holding {NODE_PACKAGE}"
        )
    package = Path(node_modules) / NODE_PACKAGE
    if not package.is_dir():
        return f"{package} does not exist"
    with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as script:
        script.write(NODE_SCRIPT)
    try:
        result = subprocess.run(
            [node, script.name, str(package.resolve()), str(seconds), str(WARM_UP)],
            input=json.dumps(
                {codec: [f.hex() for f in fs] for codec, fs in sets.items()}
            ),
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(script.name)
    return json.loads(result.stdout)


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="CPU-seconds per measurement"
    )
    parser.add_argument(
        "--node-modules", default=os.environ.get("TELTONIKA_BENCH_NODE_MODULES")
    )
    args = parser.parse_args()
    sets = corpus_sets()
    load = ", ".join(f"{figure:.2f}" for figure in os.getloadavg())
    print(
        f"Python {platform.python_version()}, {cpu_model()}, "
        f"{os.cpu_count()} CPUs (load average {load}), one core used; "
        f"records per CPU-second of the measuring process (per wall-clock "
        f"second), whole runs of {args.seconds:g} CPU-seconds"
    )
    ours = {}
    for codec, frames in sets.items():
        count, decoding, encoding = our_rates(frames, args.seconds)
        ours[codec] = decoding
        print(
            f"codec {codec:>2}: {len(frames)} frames, {count} records: "
            f"decode {decoding[0]:,.0f} ({decoding[1]:,.0f}), "
            f"encode {encoding[0]:,.0f} ({encoding[1]:,.0f})"
        )
    theirs = node_rates(args.node_modules, sets, args.seconds)
    if isinstance(theirs, str):
        print(f"{NODE_PACKAGE}: not timed: {theirs}")
        return
    for codec in sets:
        figures = theirs[codec]
        if not figures["cpu_rate"]:
            print(f"codec {codec:>2}: {NODE_PACKAGE} (node) rejects every frame")
            continue
        failed = (
            f" ({figures['failed']} frames it rejects)" if figures["failed"] else ""
        )
        print(
            f"codec {codec:>2}: {NODE_PACKAGE} (node) decodes "
            f"{figures['cpu_rate']:,.0f} ({figures['wall_rate']:,.0f}){failed}; "
            f"ours is {ours[codec][0] / figures['cpu_rate']:.1f}x per CPU-second "
            f"({ours[codec][1] / figures['wall_rate']:.1f}x per wall-clock second)"
        )


if __name__ == "__main__":
    sys.exit(main())
