"""What the protocol calls an IMEI: 15 ASCII decimal digits."""

from teltonika.codec.errors import CodecError


def is_imei(text):
    """
    True for 15 ASCII digits.  C{str.isdigit} alone is not enough: it also
    takes the digits of other scripts, which do not encode to ASCII.
    """
    return (
        isinstance(text, str) and len(text) == 15 and text.isascii() and text.isdigit()
    )


def check_imei(imei):
    """Refuse, as encoders must, anything that is not an IMEI."""
    if not is_imei(imei):
        raise CodecError(f"an IMEI is 15 decimal digits, got {imei!r}")
