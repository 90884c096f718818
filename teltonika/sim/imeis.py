"""Device identities: distinct, Luhn-valid 15-digit IMEIs.

Servers may check the Luhn digit, so a simulator that sent arbitrary digits
would be testing the wrong path.  Generated IMEIs are a fixed prefix, a
zero-padded serial number and the check digit.
"""

from teltonika.codec import is_imei

DEFAULT_PREFIX = "35209308"


def luhn_digit(body: str) -> str:
    """The check digit that makes `body` + digit pass the Luhn test."""
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:  # doubled: these sit left of the check digit
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str(-total % 10)


def is_valid_imei(imei: str) -> bool:
    return is_imei(imei) and luhn_digit(imei[:14]) == imei[14]


def make_imeis(count: int, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """`count` IMEIs: prefix, serial 0..count-1, Luhn digit."""
    if not (prefix.isascii() and prefix.isdigit()) or len(prefix) > 13:
        raise ValueError(f"IMEI prefix must be 0 to 13 digits, not {prefix!r}")
    serial_digits = 14 - len(prefix)
    if count > 10**serial_digits:
        raise ValueError(
            f"prefix {prefix!r} leaves room for {10**serial_digits} IMEIs, not {count}"
        )
    imeis = []
    for serial in range(count):
        body = f"{prefix}{serial:0{serial_digits}d}"
        imeis.append(body + luhn_digit(body))
    return imeis


def read_imeis(path: str) -> list[str]:
    """IMEIs from a file, one a line; blank lines and # comments skipped.

    Every line must be a valid IMEI and none may repeat: a fleet with two
    devices sharing an IMEI would make the server see one flapping device.
    """
    imeis = []
    seen = set()
    with open(path, encoding="ascii", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            imei = line.split("#", 1)[0].strip()
            if not imei:
                continue
            if not is_valid_imei(imei):
                raise ValueError(f"{path}:{number}: not a valid IMEI: {imei!r}")
            if imei in seen:
                raise ValueError(f"{path}:{number}: IMEI {imei} repeated")
            seen.add(imei)
            imeis.append(imei)
    if not imeis:
        raise ValueError(f"{path}: no IMEIs")
    return imeis
