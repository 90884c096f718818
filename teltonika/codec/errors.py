"""The one exception hierarchy every decoder and encoder raises.

Callers (the server, the CLI) catch ``CodecError`` and decide per subclass
whether to drop a frame, close a connection or print an error; nothing else
ever escapes a decoder, whatever bytes it is given.
"""


class CodecError(ValueError):
    """Bytes or values that are not valid Teltonika."""


class CRCMismatch(CodecError):
    """The CRC field does not match the bytes it covers."""


class UnsupportedCodec(CodecError):
    """A well-formed frame of a codec this library does not speak (7, 15...)."""


class MalformedFrame(CodecError):
    """Lengths, counts or layout that contradict each other."""


class FrameTooLarge(CodecError):
    """A declared length above the configured maximum."""
