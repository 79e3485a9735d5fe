"""Events, tracks, race configs and event registration."""
