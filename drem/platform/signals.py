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

lap_recorded = _signals.signal("lap-recorded", doc="""
The timekeeper stored a lap and the transaction committed (sent from its after-commit
callback, once per race and transaction).

Keyword arguments: ``race_id``, ``lap_id`` (ints), ``state`` (the race state after the
transaction: ``drem.timekeeper.service.race_state``, laps with ``valid``), ``bump``
(``drem.events.versions.bump_of(("lap", lap_id))``: the leaderboard versions this lap
alone produced, or None), ``lap`` (the stored lap and its race as committed, read before
the commit: ``drem.timekeeper.service.lap_facts``, or None; a receiver that gets None
reads them from the database).
""")

race_state_changed = _signals.signal("race-state-changed", doc="""
A live race changed without a new lap (set up, started, paused, resumed, ended, resets
counted, taken over) and the transaction committed; sent once per race and transaction.

Keyword arguments: ``state`` (the race state), ``bump`` (the versions when the race just
became counted, i.e. started: ``bump_of(("race", race_id))``; else None).
""")

race_changed = _signals.signal("race-changed", doc="""
A race's standing must be ranked again from the database: its laps were edited or
deleted, or it was submitted, discarded or deleted (sent after the commit, once per race
and transaction).

Keyword arguments: ``race_id``, ``event_id``, ``track_id`` (ints: the race may be
deleted by now), ``state`` (the race state when the race still exists, else None).
""")

racer_model_cars = _signals.signal("racer-model-cars", doc="""
A question, not an announcement: which cars report these racer models as loaded (the
models package shows it on a model's page and before a delete; the cars live in a
higher layer it may not import). Sent inside the request, read-only.

Keyword arguments: ``model_ids`` (list of ints). A subscriber returns a dict
``{model_id: [{"car_id": int, "hostname": str, "in_use": bool}, ...]}`` with an entry
only for models some car holds; None means "not mine".
""")
