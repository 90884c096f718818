"""Garbage-collector settings for the long-running processes.

Every frame in flight holds a few container objects (its records, their IO
dicts, the Deferreds of its Redis round trip).  With CPython's default
thresholds they are swept from generation to generation while they wait
for Redis, and the full collections that follow pause the event loop for
tens to hundreds of milliseconds, long enough for frames to pile up, which
makes the next collection longer still.  Measured on 1,000 simulated devices
(docs/performance.rst): at 20,000 records/s offered, ACKed throughput went
from about 10,600 to 19,200 records/s, and at half that load ACK p99 from
188 to 40 ms, with these settings.

What is alive once the service is built (modules, options, the service tree)
never becomes garbage: freezing it keeps it out of every later collection.

Collecting rarely is safe only because the server makes no reference cycles
per frame or per connection (gc.DEBUG_SAVEALL over thousands of frames found
none; tests/test_protocol.py checks closed connections): its garbage goes by
reference counting, and full collections have little to free.
"""

import gc

# Container allocations between two young collections (CPython: 700), then
# young collections per middle one (10) and middle ones per full one (10).
THRESHOLDS = (100_000, 50, 100)


def tune_for_throughput():
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
