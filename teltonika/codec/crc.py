"""CRC-16/IBM (also called ARC): reflected polynomial 0xA001, init 0, no final
XOR; every TCP data frame carries it over codec id .. number of data 2.

The standard library has no C implementation of this variant, and in pure
Python the CRC was a third of the time spent decoding a Codec 8E frame (the
fastest pure-Python way measured, 16 big-integer parities, still costs 2-15 us
a frame).  fastcrc computes it in compiled code, about 0.1 us a frame whatever
its length; docs/performance.rst has the measurements that chose it.
"""

from fastcrc import crc16 as _crc16


def crc16(data):
    """The CRC-16/IBM of ``data`` (bytes, bytearray or memoryview)."""
    return _crc16.arc(data)
