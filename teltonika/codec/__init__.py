"""Teltonika wire formats: pure functions, bytes in, values out."""
