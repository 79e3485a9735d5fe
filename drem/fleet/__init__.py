"""Fleets, cars, car activation, the car protocol and commands to cars."""
