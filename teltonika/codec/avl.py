"""AVL data (codecs 8, 8 Extended and 16): records in, records out.

The same AVL data block (codec id, number of data 1, records, number of data
2) travels in TCP frames and in UDP datagrams; this module reads and writes
that block, and the transports wrap it.

Decoding speed matters (the server decodes every record a fleet sends), so a
record costs one ``unpack_from``: walking its four group counts gives the
record's shape, and one compiled ``struct.Struct`` per shape (cached) reads
every fixed field and IO element at once, skipping the counts as padding.
Devices send few distinct shapes, so the cache stays small; it is bounded
anyway, against hostile input.
"""

import struct
from types import MappingProxyType
from typing import NamedTuple

from teltonika.codec.errors import CodecError, MalformedFrame, UnsupportedCodec

_NO_NX = MappingProxyType({})


class AVLRecord(NamedTuple):
    """One position with its IO elements, as the wire has it.

    ``lon`` and ``lat`` are the signed wire integers (degrees x 1e7); ``io``
    values are the unsigned wire integers (whether an IO id is signed is the
    consumer's business); ``nx`` holds Codec 8E's variable-length values.
    """

    timestamp: int
    priority: int
    lon: int
    lat: int
    altitude: int
    angle: int
    satellites: int
    speed: int
    event_id: int
    io: dict
    nx: dict = _NO_NX
    generation: int | None = None


class AVLPacket(NamedTuple):
    """The records of one TCP data frame; ``codec`` is "8", "8E" or "16"."""

    codec: str
    records: tuple


_WIDTHS = (1, 2, 4, 8)
_VALUE_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}
_POSITION = "QBiihHBH"  # timestamp .. speed, common to all three codecs


class _Layout:
    """Field sizes of one codec: ids and counts are one or two bytes wide."""

    def __init__(self, codec_id, name, id_format, count_format, event_format):
        self.codec_id = codec_id
        self.name = name
        self.has_nx = name == "8E"
        self.has_generation = name == "16"
        generation = "B" if self.has_generation else ""
        fixed = ">" + _POSITION + event_format + generation + count_format
        # Fixed fields and the count of the 1-byte group, for encoding.
        self.header = struct.Struct(fixed + count_format)
        self.count = struct.Struct(">" + count_format)
        self.count_size = self.count.size
        # Bytes before the first group count, and each group's element size.
        self.prefix_size = struct.calcsize(fixed)
        # Index of the first IO id in an unpacked record: after timestamp ..
        # event id, the generation type (16 only) and the total IO count.
        self.first_id = 11 if self.has_generation else 10
        element_formats = tuple(id_format + _VALUE_FORMATS[w] for w in _WIDTHS)
        self.element_sizes = tuple(
            struct.calcsize(">" + element) for element in element_formats
        )
        self.shapes = _ShapeStructs(fixed, f"{self.count_size}x", element_formats)
        self.element_packers = tuple(
            _ElementPackers(element) for element in element_formats
        )
        self.max_id = 0xFF if id_format == "B" else 0xFFFF
        self.max_count = 0xFF if count_format == "B" else 0xFFFF


class _ShapeStructs(dict):
    """(n1, n2, n4, n8) -> the Struct that reads a whole record of that
    shape, group counts skipped as padding (8E's NX group excluded)."""

    LIMIT = 4096

    def __init__(self, fixed_format, count_padding, element_formats):
        super().__init__()
        self.fixed_format = fixed_format
        self.count_padding = count_padding
        self.element_formats = element_formats

    def __missing__(self, shape):
        groups = zip(self.element_formats, shape, strict=True)
        compiled = struct.Struct(
            self.fixed_format
            + "".join(self.count_padding + element * count for element, count in groups)
        )
        if len(self) < self.LIMIT:
            self[shape] = compiled
        return compiled


class _ElementPackers(dict):
    """count -> compiled Struct that packs that many elements of one group."""

    def __init__(self, element_format):
        super().__init__()
        self.element_format = element_format

    def __missing__(self, count):
        compiled = struct.Struct(">" + self.element_format * count)
        if count <= 0xFF:
            self[count] = compiled
        return compiled


LAYOUTS = {
    0x08: _Layout(0x08, "8", "B", "B", "B"),
    0x8E: _Layout(0x8E, "8E", "H", "H", "H"),
    0x10: _Layout(0x10, "16", "H", "B", "H"),
}
LAYOUTS_BY_NAME = {layout.name: layout for layout in LAYOUTS.values()}

_NX_HEADER = struct.Struct(">HH")
_U8 = struct.Struct(">B")


def decode_avl_data(buf, start, end):
    """Decode the AVL data block ``buf[start:end]`` (codec id .. number of
    data 2) and return (codec name, records).  ``buf`` is the whole frame or
    datagram (bytes), so offsets in error messages are offsets the operator
    sees.
    """
    if end - start < 3:
        raise MalformedFrame(
            f"AVL data needs at least 3 bytes (codec id, two record counts) "
            f"at offset {start}, got {max(end - start, 0)}"
        )
    layout = LAYOUTS.get(buf[start])
    if layout is None:
        raise UnsupportedCodec(
            f"codec id 0x{buf[start]:02x} at offset {start} is not an AVL codec "
            f"(0x08, 0x8e and 0x10 are)"
        )
    count = buf[start + 1]
    trailing_count = buf[end - 1]
    if count != trailing_count:
        raise MalformedFrame(
            f"number of data 1 at offset {start + 1} is {count} but number of "
            f"data 2 at offset {end - 1} is {trailing_count}"
        )
    records, pos = _decode_records(layout, buf, start + 2, end - 1, count)
    if pos != end - 1:
        raise MalformedFrame(
            f"{end - 1 - pos} bytes left over at offset {pos} after the "
            f"{count} records that number of data 1 announces"
        )
    return layout.name, records


def _too_short(index, what, size, pos, limit):
    return MalformedFrame(
        f"record {index}: {what} needs {size} bytes at offset {pos}, "
        f"records end at {limit}"
    )


_GROUP_NAMES = tuple(f"IO group of {width}-byte values" for width in _WIDTHS)


def _decode_records(layout, buf, pos, limit, count):
    """Decode ``count`` records from ``buf[pos:limit]``: (records, end).

    Walking a record's group counts trusts them and checks once, at the end,
    that the record fits before ``limit``: a count read past ``limit`` only
    pushes the end further out.  Only a record that does not fit is walked
    again, by ``_overrun``, to say which part overran.
    """
    prefix_size = layout.prefix_size
    read_count = layout.count.unpack_from
    count_size = layout.count_size
    size1, size2, size4, size8 = layout.element_sizes
    shapes = layout.shapes
    has_nx = layout.has_nx
    has_generation = layout.has_generation
    first_id = layout.first_id
    make_record = tuple.__new__
    records = []
    for index in range(1, count + 1):
        p = pos + prefix_size
        try:
            (n1,) = read_count(buf, p)
            p += count_size + n1 * size1
            (n2,) = read_count(buf, p)
            p += count_size + n2 * size2
            (n4,) = read_count(buf, p)
            p += count_size + n4 * size4
            (n8,) = read_count(buf, p)
            p += count_size + n8 * size8
        except struct.error:  # a count past the end of ``buf``
            p = limit + 1
        if p > limit:
            raise _overrun(layout, buf, pos, limit, index)
        fields = shapes[n1, n2, n4, n8].unpack_from(buf, pos)
        pos = p
        # The IO ids and values alternate after the fixed fields, so the two
        # slices have the same length; zip(strict=True) would cost 4% of the
        # decoding time (a keyword argument takes zip's slow call path).
        io = dict(zip(fields[first_id::2], fields[first_id + 1 :: 2]))  # noqa: B905
        seen = n1 + n2 + n4 + n8
        nx = _NO_NX
        if has_nx:
            if pos + 2 > limit:
                raise _too_short(index, "the NX count", 2, pos, limit)
            nx_count = buf[pos] << 8 | buf[pos + 1]
            pos += 2
            if nx_count:
                nx, pos = _decode_nx(buf, pos, limit, index, nx_count)
            else:
                nx = {}
            seen += nx_count
        total = fields[first_id - 1]
        if seen != total:
            raise MalformedFrame(
                f"record {index}: total IO count says {total} elements, "
                f"the groups hold {seen} (record ends at offset {pos})"
            )
        generation = fields[9] if has_generation else None
        records.append(make_record(AVLRecord, (*fields[:9], io, nx, generation)))
    return tuple(records), pos


def _overrun(layout, buf, pos, limit, index):
    """The error for a record at ``pos`` whose groups do not fit before
    ``limit``: which part is the first to overrun, and by how much."""
    count_size = layout.count_size
    p = pos + layout.prefix_size
    if p + count_size > limit:
        return _too_short(
            index, "the record header", layout.prefix_size + count_size, pos, limit
        )
    for group, size in enumerate(layout.element_sizes):
        (n,) = layout.count.unpack_from(buf, p)
        p += count_size
        # Every group but the last is followed by the next group's count.
        needed = n * size + (count_size if group < 3 else 0)
        if p + needed > limit:
            return _too_short(index, _GROUP_NAMES[group], needed, p, limit)
        p += n * size
    raise AssertionError(f"record {index} at offset {pos} fits before {limit}")


def _decode_nx(buf, pos, limit, index, count):
    """The ``count`` elements of Codec 8E's NX group at ``pos``: (id -> bytes,
    end)."""
    nx = {}
    for _ in range(count):
        if pos + 4 > limit:
            raise _too_short(index, "an NX element header", 4, pos, limit)
        io_id, length = _NX_HEADER.unpack_from(buf, pos)
        pos += 4
        if pos + length > limit:
            raise _too_short(index, f"NX element {io_id}'s value", length, pos, limit)
        nx[io_id] = buf[pos : pos + length]
        pos += length
    return nx, pos


def encode_avl_data(codec, records, widths=None):
    """The AVL data block (codec id .. number of data 2) for ``records``."""
    layout = LAYOUTS_BY_NAME.get(codec)
    if layout is None:
        raise CodecError(f"cannot encode codec {codec!r}: use '8', '8E' or '16'")
    records = tuple(records)
    if len(records) > 0xFF:
        raise CodecError(f"a frame holds at most 255 records, got {len(records)}")
    parts = [_U8.pack(layout.codec_id), _U8.pack(len(records))]
    for index, record in enumerate(records, 1):
        try:
            parts.append(_encode_record(layout, record, widths or {}))
        except struct.error as exc:
            raise CodecError(
                f"record {index}: a value is out of range: {exc}"
            ) from None
    parts.append(_U8.pack(len(records)))
    return b"".join(parts)


def _smallest_width(value):
    for width in _WIDTHS:
        if value < 1 << (8 * width):
            return width
    raise CodecError(f"IO value {value} does not fit in 8 bytes")


def _encode_record(layout, record, widths):
    if record.generation is not None and not layout.has_generation:
        raise CodecError(f"codec {layout.name} has no generation type")
    if layout.has_generation and record.generation is None:
        raise CodecError("codec 16 records need a generation type (0-7)")
    if record.nx and not layout.has_nx:
        raise CodecError(f"codec {layout.name} has no NX (variable-length) group")
    groups = {width: [] for width in _WIDTHS}
    for io_id, value in record.io.items():
        if not 0 <= io_id <= layout.max_id:
            raise CodecError(f"IO id {io_id} does not fit codec {layout.name}")
        if value < 0:
            raise CodecError(f"IO {io_id}: values are unsigned, got {value}")
        width = widths.get(io_id) or _smallest_width(value)
        if width not in groups:
            raise CodecError(f"IO {io_id}: width {width} is not 1, 2, 4 or 8")
        groups[width] += (io_id, value)
    total = len(record.io) + len(record.nx)
    if total > layout.max_count:
        raise CodecError(f"{total} IO elements do not fit codec {layout.name}")
    generation = () if record.generation is None else (record.generation,)
    head = layout.header.pack(*record[:9], *generation, total, len(groups[1]) // 2)
    parts = [head]
    for group_index, width in enumerate(_WIDTHS):
        elements = groups[width]
        packer = layout.element_packers[group_index][len(elements) // 2]
        parts.append(packer.pack(*elements))
        if width < 8:
            parts.append(layout.count.pack(len(groups[width * 2]) // 2))
    if layout.has_nx:
        parts.append(layout.count.pack(len(record.nx)))
        for io_id, value in record.nx.items():
            parts.append(_NX_HEADER.pack(io_id, len(value)))
            parts.append(bytes(value))
    return b"".join(parts)
