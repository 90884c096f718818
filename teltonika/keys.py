"""Redis key names of the platform contract, in one place.

The back office and telemetry consumers depend on these exact names
(docs/contract.rst); nothing else in the package spells a key.
"""

ALLOWED_DEVICES = "devices:allowed"
REGISTRY = "connections:registry"
JANITOR_LOCK = "connections:janitor:lock"
DEVICE_MESSAGES = "devices:messages"
COMMAND_RESPONSES = "commands:responses"
COMMAND_GROUP = "ingestion"
DEFAULT_TELEMETRY_STREAM = "telemetry:avl"


def heartbeat(instance):
    return "connections:heartbeat:" + instance


def outbound(instance):
    return "commands:outbound:" + instance


def fingerprint(imei):
    """Last frame stored for a device: the contract leaves this key's name to us."""
    return "telemetry:fingerprint:" + imei
