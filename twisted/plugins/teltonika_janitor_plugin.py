from twisted.application.service import ServiceMaker

teltonika_janitor = ServiceMaker(
    "teltonika-janitor",
    "teltonika.janitor_tap",
    "Clean up after dead teltonika ingestion instances (registry, stranded "
    "commands)",
    "teltonika-janitor",
)
