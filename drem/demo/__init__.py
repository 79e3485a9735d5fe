"""The demo event: a whole race event run end to end by real processes (``drem demo``).

``runner`` runs the event, ``launchers`` starts its processes (clamd, gunicorn, car
clients), ``scaleout`` the scale-out layout, ``report`` checks the results against
the cars' lap logs. ``processes`` is the process harness (free ports, wait until,
subprocesses stopped with their whole tree) that the demo, the end-to-end tests and
the benchmarks share, with ``live_server`` and ``car_process`` built on it for them.
"""
