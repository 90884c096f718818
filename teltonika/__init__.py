"""Ingestion server for Teltonika GPS trackers."""
