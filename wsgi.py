"""The WSGI entry point of every drem server: ``gunicorn -k gevent ... wsgi:app``.

After the app is built, the objects made so far (modules, the app, SQLAlchemy's
mappings: about 125,000) are moved out of the garbage collector's reach with
``gc.freeze()`` (Python docs, ``gc`` module). They live as long as the worker, and
leaving them in the oldest generation made every full collection scan them: pauses
of 70-126 ms every few seconds while a leaderboard reached 500 displays, measured
with ``bench/leaderboard.py``. With the freeze none ran while laps were pushed, and
those during a burst of connecting displays take 10-60 ms. ``freeze_heap`` also sets
the collector's thresholds (``drem.platform.serving.GC_THRESHOLDS``).
"""

from drem.app import create_app
from drem.platform.serving import freeze_heap

app = create_app()
freeze_heap()
