"""The lap-timer device program: sensors at the finish line report crossings to drem.

Runs on a Raspberry Pi (DREM's timer: pressure strips on GPIO17 and GPIO27) beside,
not inside, the car daemon, and shares its parts: the durable outbox
(``car_client.daemon.outbox``), the Socket.IO connection with reconnect and heartbeat
(``car_client.daemon.connection``) and the one-time activation exchange
(``car_client.daemon.activation``). Modules:

- ``config``: the timer's config file (token, server, sensors), mode 0600;
- ``sensors``: the inputs through gpiozero (pin, pull-up/down, edge, bounce time);
- ``program``: wiring, crossings into the outbox, clock offset, exit statuses;
- ``cli``: ``car-client timer activate`` and ``car-client timer run``.

The wire contract is ``docs/timer-protocol.md``; nothing here imports ``drem``.
"""
