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
    m = int.from_bytes(bytes(data).translate(_REVERSED_BITS), "big")
    # Unrolled: this runs once per frame and the loop overhead showed.
    m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15 = _masks
    return (
        ((m & m0).bit_count() & 1)
        | ((m & m1).bit_count() & 1) << 1
        | ((m & m2).bit_count() & 1) << 2
        | ((m & m3).bit_count() & 1) << 3
        | ((m & m4).bit_count() & 1) << 4
        | ((m & m5).bit_count() & 1) << 5
        | ((m & m6).bit_count() & 1) << 6
        | ((m & m7).bit_count() & 1) << 7
        | ((m & m8).bit_count() & 1) << 8
        | ((m & m9).bit_count() & 1) << 9
        | ((m & m10).bit_count() & 1) << 10
        | ((m & m11).bit_count() & 1) << 11
        | ((m & m12).bit_count() & 1) << 12
        | ((m & m13).bit_count() & 1) << 13
        | ((m & m14).bit_count() & 1) << 14
        | ((m & m15).bit_count() & 1) << 15
    )
