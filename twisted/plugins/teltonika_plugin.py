from twisted.application.service import ServiceMaker

teltonika = ServiceMaker(
    "teltonika",
    "teltonika.tap",
    "Ingestion server for Teltonika GPS trackers (TCP in, Redis streams out)",
    "teltonika",
)
