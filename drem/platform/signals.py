"""Domain signals: how the feature packages tell each other what happened.

Every signal drem sends is declared here, once (blinker, a Flask dependency; the
pattern of Indico's ``indico/core/signals``). A sender never imports its subscribers:
it calls ``signal.send(sender_name, **data)`` with the data as keyword arguments, and
each subscriber connects in its own package (``drem.timekeeper.subscribers``,
``drem.leaderboard.subscribers``), imported by ``drem.app``. Signals that announce a
change are sent from the sender's after-commit callback, so a subscriber sees committed
data and runs at most once per transaction. The lap path is written out in
``docs/architecture.md``.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

car_lap_reported = _signals.signal("car-lap-reported", doc="""
A car reported a lap that the fleet stored in the car's lap log (not yet committed:
sent inside the request, so the timekeeper's lap joins the same transaction).

Keyword arguments: ``car`` (the ``Car`` row), ``report`` (the new ``CarLapReport`` row:
``lap_id``, ``lap_time_ms``, ``resets``), ``race_id`` (int or None: the race the car says
it drove the lap in). A subscriber that takes the lap into a race returns its answer,
a dict ``{"stored": bool, "reason"?: str, "race_id"?: int, "lap_number"?: int,
"outcome": str}``; None means "not mine".
""")
