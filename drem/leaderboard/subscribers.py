"""What the leaderboard does when the timekeeper or the race admin report something
(drem.platform.signals): rank and push to the displays.

Imported once by ``drem.app``; every signal here is sent after the sender's commit, so
the leaderboard reads committed data (in a session of its own).
"""

from __future__ import annotations

from drem.leaderboard import service
from drem.platform.signals import lap_recorded, race_changed, race_state_changed


@lap_recorded.connect
def rank_lap(_sender, *, race_id: int, lap_id: int, state: dict, bump: dict | None,
             lap: dict | None = None) -> None:
    """A stored lap: one ``lb_update`` per board carrying the race
    (:func:`drem.leaderboard.service.on_lap_recorded`)."""
    service.on_lap_recorded(race_id, lap_id, state, bump, lap)


@race_state_changed.connect
def show_race(_sender, *, state: dict, bump: dict | None) -> None:
    """The live race changed without a lap (:func:`drem.leaderboard.service.push_race_state`)."""
    service.push_race_state(state, bump)


@race_changed.connect
def rank_race_again(_sender, *, race_id: int, event_id: int, track_id: int, state: dict | None) -> None:
    """A race edited, submitted, discarded or deleted: both boards ranked again and sent
    whole (``lb_full`` carries the live races, so ``state`` needs no push of its own)."""
    service.on_race_changed(race_id, event_id=event_id, track_id=track_id)
