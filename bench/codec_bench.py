"""Records per second decoding and encoding the corpus's valid TCP frames.

Runs on one core: ``python bench/codec_bench.py``.  For each of the Codec 8,
8E and 16 sets it repeats the set for about ``--seconds`` and reports the
best 0.1 s slice (other processes may share the machine).

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


def rate(work, records_per_round, seconds):
    """Records/s of ``work()`` repeated for about ``seconds``: the best of
    0.1 s slices, since other processes share the machine."""
    best = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        rounds = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < 0.1:
            work()
            rounds += 1
        best = max(best, rounds * records_per_round / elapsed)
    return best


def our_rates(frames, seconds):
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
const out = {};
for (const [codec, frames] of Object.entries(sets)) {
  let failed = 0;
  for (const hex of frames) {
    try { new ProtocolParser(hex); } catch (e) { failed += 1; }
  }
  let best = 0;
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  while (process.hrtime.bigint() < deadline) {
    let records = 0;
    const start = process.hrtime.bigint();
    let elapsed = 0;
    do {
      for (const hex of frames) {
        try { records += new ProtocolParser(hex).Content.AVL_Datas.length; }
        catch (e) {}
      }
      elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    } while (elapsed < 0.1);
    best = Math.max(best, records / elapsed);
  }
  out[codec] = { rate: best, failed: failed };
}
console.log(JSON.stringify(out));
"""


def node_rates(node_modules, sets, seconds):
    """codec -> {"rate", "failed"} from the npm parser, or a reason it is absent."""
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
            [node, script.name, str(package.resolve()), str(seconds)],
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
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument(
        "--node-modules", default=os.environ.get("TELTONIKA_BENCH_NODE_MODULES")
    )
    args = parser.parse_args()
    sets = corpus_sets()
    print(
        f"Python {platform.python_version()}, {cpu_model()}, "
        f"{os.cpu_count()} CPUs, one core used"
    )
    ours = {}
    for codec, frames in sets.items():
        count, decoding, encoding = our_rates(frames, args.seconds)
        ours[codec] = decoding
        print(
            f"codec {codec:>2}: {len(frames)} frames, {count} records: "
            f"decode {decoding:,.0f} records/s, encode {encoding:,.0f} records/s"
        )
    theirs = node_rates(args.node_modules, sets, args.seconds)
    if isinstance(theirs, str):
        print(f"{NODE_PACKAGE}: not timed: {theirs}")
        return
    for codec, figures in theirs.items():
        if not figures["rate"]:
            print(f"codec {codec:>2}: {NODE_PACKAGE} (node) rejects every frame")
            continue
        failed = (
            f" ({figures['failed']} frames it rejects)" if figures["failed"] else ""
        )
        print(
            f"codec {codec:>2}: {NODE_PACKAGE} (node) decodes "
            f"{figures['rate']:,.0f} records/s{failed}; "
            f"ours is {ours[codec] / figures['rate']:.1f}x"
        )


if __name__ == "__main__":
    sys.exit(main())
