"""The car client daemon: activation, the server connection, commands, the outbox.

Modules, one job each:

- ``config``: the car's config file (token, server URL, settings), mode 0600;
- ``activation``: the one-time ``POST /api/car/activate`` exchange;
- ``state``: the car's state machine (pure; every command is checked against it);
- ``outbox``: the durable SQLite outbox and the append-only lap log;
- ``settings``: speed cap and tail light, kept across restarts;
- ``model_store``: downloading (with resume), checking and keeping driving models;
- ``connection``: the Socket.IO client, reconnect loop, heartbeat and outbox sender;
- ``commands``: the command dispatcher (server ``command`` messages);
- ``daemon``: wiring, signals, restart;
- ``cli``: the ``car-client activate`` and ``car-client run`` commands.

The wire contract is ``docs/car-protocol.md``; nothing here imports ``drem``.
"""
