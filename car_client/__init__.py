"""drem car client: the daemon that runs on each car (or beside a simulated car).

It talks to the drem server only through the car protocol (docs/car-protocol.md)
and never imports the ``drem`` package.
"""

__version__ = "0.1.0"
