"""CRC-16/IBM (also called ARC): reflected polynomial 0xA001, init 0, no final
XOR; every TCP data frame carries it over codec id .. number of data 2.

The standard library has no C implementation of this variant, and a
table-driven loop costs one Python step per byte (or per two bytes with a
65,536-entry table): on long 8E frames that was most of the decoding time.
So this module uses linearity instead.  With init 0 the CRC is a linear map
from message bits to 16 bits, and the contribution of a message bit depends
only on how many bits follow it.  Bit k of the CRC is therefore the parity of
the message (read as one big integer) ANDed with a fixed mask, and Python
computes a big integer's AND and ``bit_count()`` in C.  Leading zero bytes do
not change a CRC with init 0, so masks built for long messages also serve
short ones.  The masks grow on demand, by doubling.
"""

# Reversing the bits of every byte puts message bit t (counted from the end,
# in the order the register consumes them) at bit t of the big integer.
_REVERSED_BITS = bytes(int(f"{octet:08b}"[::-1], 2) for octet in range(256))

_masks = ()
_covered = 0  # how many message bytes the masks cover


def _build_masks(length):
    """Masks for messages of up to ``length`` bytes."""
    global _masks, _covered
    register = 1
    columns = []  # register after a lone 1 bit followed by t zero bits
    for _ in range(8 * length):
        register = (register >> 1) ^ 0xA001 if register & 1 else register >> 1
        columns.append(register)
    columns.reverse()
    _masks = tuple(
        int("".join("1" if column >> k & 1 else "0" for column in columns), 2)
        for k in range(16)
    )
    _covered = length


_build_masks(2048)


def crc16(data):
    """The CRC-16/IBM of ``data`` (bytes, bytearray or memoryview)."""
    if len(data) > _covered:
        _build_masks(max(len(data), 2 * _covered))
    message = int.from_bytes(bytes(data).translate(_REVERSED_BITS), "big")
    crc = 0
    for bit, mask in enumerate(_masks):
        crc |= ((message & mask).bit_count() & 1) << bit
    return crc
