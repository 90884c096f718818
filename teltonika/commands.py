"""Commands on their way to a device, in the form the send queue encodes."""

from dataclasses import dataclass

from teltonika import codec


@dataclass(frozen=True)
class Command:
    """
    One command for one device.

    @ivar codec: "12", or "14" to have the device check C{imei} first (it
        answers with a nACK when the IMEI is not its own).
    @ivar payload: the command text as bytes, or a binary payload.
    """

    codec: str
    payload: bytes
    imei: str


def encode_command(command):
    imei = command.imei if command.codec == "14" else None
    return codec.encode_message(
        command.codec, codec.COMMAND, command.payload, imei=imei
    )
