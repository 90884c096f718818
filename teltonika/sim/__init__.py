"""A fleet of simulated Teltonika trackers."""
