"""The text a tracker answers to an SMS/GPRS command.

Formats follow what FMB devices print, close enough for a server to store
and show them; the server must treat the answer as opaque text anyway.
"""

import time

FIRMWARE = "03.28.07.Rev.00"
DIGITAL_OUTPUTS = 2


def answer(command, imei, vehicle, outputs):
    """The answer to `command` (str); `outputs` is the device's DOUT list,
    changed in place by setdigout."""
    words = command.strip().split()
    if not words:
        return "Unknown command"
    name, arguments = words[0].lower(), words[1:]
    if name == "getver":
        return (
            f"Ver:{FIRMWARE} GPS:AXN_5.10_3333 Hw:FMB920 Mod:12 IMEI:{imei}"
            " Init:2026-1-1 0:0 Uptime:3600 BL:1.10"
        )
    if name == "getinfo":
        return (
            f"RTC:{_clock(vehicle.last_timestamp)} Init:2026-1-1 0:0 UpTime:3600s"
            f" PWR:PwrVoltage RST:0 GPS:3 SAT:{vehicle.satellites} TTFF:12 TTLF:1"
            " NOGPS:0:0 SR:0 FG:0 FL:0 SMS:0 REC:0 MD:0 DB:0"
        )
    if name == "getgps":
        return (
            f"GPS:1 Sat:{vehicle.satellites} Lat:{vehicle.lat:.6f}"
            f" Long:{vehicle.lon:.6f} Alt:{round(vehicle.altitude)}"
            f" Speed:{round(vehicle.speed)} Dir:{round(vehicle.heading) % 360}"
            f" Date: {_clock(vehicle.last_timestamp)}"
        )
    if name == "getio":
        douts = " ".join(f"DO{i + 1}:{bit}" for i, bit in enumerate(outputs))
        return f"DI1:{int(vehicle.ignition)} DI2:0 DI3:0 AIN1:0 AIN2:0 {douts}"
    if name == "setdigout":
        return _set_outputs(arguments, outputs)
    return f"Unknown command: {name}"


def _set_outputs(arguments, outputs):
    """`setdigout 1?` sets DOUT1 and leaves DOUT2 as it is."""
    if not arguments:
        return "Wrong DOUT parameters: missing bits"
    bits = arguments[0]
    if len(bits) > len(outputs) or set(bits) - set("01?"):
        return f"Wrong DOUT parameters: {bits}"
    for index, bit in enumerate(bits):
        if bit != "?":
            outputs[index] = int(bit)
    states = " ".join(f"DOUT{i + 1}:{bit}" for i, bit in enumerate(outputs))
    return f"{states} Timeout:INFINITY"


def _clock(milliseconds):
    return time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(milliseconds / 1000))
