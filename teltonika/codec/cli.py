"""teltonika-decode: frames captured from a device, as hex, to JSON.

Each input line (from the arguments, or else from stdin) is one capture:

- a TCP data frame (starts with the 00000000 preamble): AVL or Codec 12/13/14;
- a UDP datagram (bytes 6-7 are the IMEI length, 000f);
- anything else is read as a TCP stream: keep-alive bytes (ff) and logins,
  possibly followed by data frames, one JSON object per frame.

Every decoded frame prints one JSON object on its own line.  A line that does
not decode prints {"error": ..., "detail": ...} and the tool goes on; the exit
status is 1 if any line failed.
"""

import argparse
import json
import sys

from teltonika.codec.errors import (
    CodecError,
    CRCMismatch,
    FrameTooLarge,
    MalformedFrame,
    UnsupportedCodec,
)
from teltonika.codec.framing import (
    PREAMBLE,
    FrameKind,
    decode_frame,
    decode_login,
    next_frame,
)
from teltonika.codec.jsonview import frame_to_json
from teltonika.codec.udp import decode_udp

_ERROR_NAMES = (
    (CRCMismatch, "crc_mismatch"),
    (UnsupportedCodec, "unsupported_codec"),
    (FrameTooLarge, "too_large"),
    (CodecError, "malformed"),
)
_UDP_IMEI_LENGTH = b"\x00\x0f"


def decode_capture(data):
    """Yield one JSON-ready dict per frame in ``data``; raise CodecError."""
    if data.startswith(PREAMBLE):
        next_frame(data)  # a declared length above the limit is too_large
        yield frame_to_json(decode_frame(data))
    elif data[6:8] == _UDP_IMEI_LENGTH:
        yield frame_to_json(decode_udp(data))
    else:
        yield from _decode_stream(data)


def _decode_stream(data):
    pos = 0
    while pos < len(data):
        kind, size = next_frame(data[pos:])
        frame = data[pos : pos + size]
        if kind is FrameKind.NEED_MORE:
            raise MalformedFrame(
                f"the line ends inside a frame that starts at offset {pos}"
            )
        if kind is FrameKind.KEEPALIVE:
            yield {"keepalive": True}
        elif kind is FrameKind.LOGIN:
            yield {"login": decode_login(frame)}
        else:
            yield frame_to_json(decode_frame(frame))
        pos += size


def _error(exc):
    name = next(name for cls, name in _ERROR_NAMES if isinstance(exc, cls))
    return {"error": name, "detail": str(exc)}


def _parse_hex(line):
    text = "".join(line.split())
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise MalformedFrame(
            f"not hexadecimal: {text[:40]!r}{'...' if len(text) > 40 else ''} "
            f"(expected pairs of the digits 0-9 and a-f)"
        ) from None


def main(argv=None, stdin=None, stdout=None):
    parser = argparse.ArgumentParser(
        prog="teltonika-decode",
        description="Decode Teltonika frames given as hex, one per line, to "
        "JSON, one object per frame.",
    )
    parser.add_argument(
        "frames", nargs="*", metavar="HEX", help="frames to decode (default: stdin)"
    )
    args = parser.parse_args(argv)
    stdout = stdout or sys.stdout
    lines = args.frames or (stdin or sys.stdin)
    failed = False
    for line in lines:
        if not line.strip():
            continue
        try:
            for entry in decode_capture(_parse_hex(line)):
                print(json.dumps(entry), file=stdout)
        except CodecError as exc:
            failed = True
            print(json.dumps(_error(exc)), file=stdout)
    return 1 if failed else 0
