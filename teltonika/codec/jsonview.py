"""Decoded values as JSON-ready dicts, with the field names of the telemetry
entry in the Redis contract (ts, lat, lon in degrees, alt, sat, io...), so
what an operator reads from ``teltonika-decode`` is what a consumer reads from
the stream.
"""

from teltonika.codec.avl import AVLPacket
from teltonika.codec.messages import Message
from teltonika.codec.udp import UDPPacket


def record_to_json(record):
    io = {str(io_id): value for io_id, value in record.io.items()}
    io.update((str(io_id), value.hex()) for io_id, value in record.nx.items())
    entry = {
        "ts": record.timestamp,
        "priority": record.priority,
        "lat": round(record.lat / 1e7, 7),
        "lon": round(record.lon / 1e7, 7),
        "alt": record.altitude,
        "angle": record.angle,
        "sat": record.satellites,
        "speed": record.speed,
        "event": record.event_id,
    }
    if record.generation is not None:
        entry["gen"] = record.generation
    entry["io"] = io
    return entry


def frame_to_json(frame):
    """An AVLPacket, UDPPacket or Message as a dict."""
    if isinstance(frame, Message):
        entry = {"codec": frame.codec, "type": frame.type}
        if frame.imei is not None:
            entry["imei"] = frame.imei
        if frame.timestamp is not None:
            entry["ts"] = frame.timestamp
        entry["text"] = frame.payload.decode("utf-8", "replace")
        entry["hex"] = frame.payload.hex()
        return entry
    if not isinstance(frame, AVLPacket | UDPPacket):
        raise TypeError(f"not a decoded frame: {frame!r}")
    entry = {"codec": frame.codec}
    if isinstance(frame, UDPPacket):
        entry.update(
            transport="udp",
            imei=frame.imei,
            packet_id=frame.packet_id,
            avl_packet_id=frame.avl_packet_id,
        )
    entry["records"] = [record_to_json(record) for record in frame.records]
    return entry
