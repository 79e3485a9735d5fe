"""Vehicles the car client can drive: the interface and its implementations."""
