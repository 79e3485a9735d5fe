"""Race flow on the server: set up, start, pause, resume, end, submit, discard.

The race lives in the database from the moment it is set up; every change is a
row update guarded by the race's version number (two operators cannot overwrite
each other), and every lap is stored the moment it happens (``timekeeper.laps``).
Car commands go out after the commit; so do the announcements (drem.platform.signals):
once per race and transaction, :func:`push_state` sends ``lap_recorded`` (a lap was
stored), ``race_changed`` (the race must be ranked again) or ``race_state_changed``,
and the race state to the timekeeper consoles.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from drem.auth.models import User
from drem.events.models import (
    COUNTED,
    DISCARDED,
    ENDED,
    LIVE,
    PAUSED,
    READY,
    RUNNING,
    SUBMITTED,
    EventRacer,
    Lap,
    Race,
)
from drem.events.service import get_track
from drem.events.versions import bump_of
from drem.fleet.commands import model_load_state, send_commands
from drem.fleet.service import check_car_runs, get_car
from drem.models_mgr.models import AVAILABLE, RacerModel
from drem.platform.audit import record_audit
from drem.platform.db_types import utcnow
from drem.platform.effects import after_commit, before_commit
from drem.platform.errors import Conflict, Forbidden, ServiceError
from drem.platform.extensions import db, socketio
from drem.platform.permissions import ADMIN
from drem.platform.signals import lap_recorded, race_changed, race_state_changed
from drem.timekeeper import clock


def live_race(track_id: int) -> Race | None:
    """The live (set up, running, paused or ended but not yet submitted) race of a track."""
    return db.session.scalar(db.select(Race).where(Race.live_track_id == track_id))


def runs_done(track_id: int, racer_id: int) -> int:
    """Runs of the racer on this track that count (submitted or live), for max runs."""
    return db.session.scalar(db.select(db.func.count()).select_from(Race).where(
        Race.track_id == track_id, Race.racer_id == racer_id, Race.status.in_(COUNTED)))


def racer_list(track_id: int) -> list[dict]:
    """The racers registered for the track's event, by name, as the race set-up form needs
    them: ``[{"user_id", "username", "colour", "country_code", "runs_done" (counted runs
    on this track), "max_runs" (None: unlimited), "models": [{"id", "filename", "format"}]
    (available models, newest first)}]``. NotFound for an unknown track.

    A fixed number of queries whatever the number of racers (track, event,
    registrations with users, runs done, models)."""
    track = get_track(track_id)
    max_runs = track.event.max_runs_per_racer
    regs = db.session.execute(db.select(EventRacer, User).join(User, User.id == EventRacer.user_id)
                              .where(EventRacer.event_id == track.event_id)).all()
    user_ids = [user.id for _reg, user in regs]
    runs: dict[int, int] = {}
    models: dict[int, list[dict]] = {uid: [] for uid in user_ids}
    if user_ids:
        runs = dict(db.session.execute(
            db.select(Race.racer_id, db.func.count()).where(
                Race.track_id == track.id, Race.racer_id.in_(user_ids), Race.status.in_(COUNTED))
            .group_by(Race.racer_id)).all())
        for model in db.session.scalars(db.select(RacerModel).where(
                RacerModel.owner_id.in_(user_ids), RacerModel.status == AVAILABLE)
                .order_by(RacerModel.uploaded_at.desc(), RacerModel.id.desc())):
            models[model.owner_id].append({"id": model.id, "filename": model.filename,
                                           "format": model.model_format})
    return [{"user_id": user.id, "username": user.username, "colour": reg.colour,
             "country_code": user.country_code, "runs_done": runs.get(user.id, 0), "max_runs": max_runs,
             "models": models[user.id]}
            for reg, user in sorted(regs, key=lambda row: row[1].username.lower())]


def check_operator(actor, race: Race) -> None:
    """Only the race's operator (or an admin) acts on a live race; others see it read-only."""
    if race.operator_id != actor.id and actor.role != ADMIN:
        name = race.operator.username if race.operator else "another operator"
        raise Forbidden(f"{name} is running this race; take it over to control it")


def _need(race: Race, *statuses: str, action: str) -> None:
    if race.status not in statuses:
        raise Conflict(f"cannot {action}: the race is {race.status}")


def setup_race(actor, track_id: int, racer_id: int, car_id: int | None = None, model_id: int | None = None,
               raced_by_proxy: bool = False) -> Race:
    """Set up the next race of a track for a racer (status ``ready``).

    Checks: the track has no live race (Conflict), the racer is registered for the
    event, max runs per racer is not reached (Conflict, "runs done / max"), the model
    is the racer's and available, the car exists. After the commit the car gets
    ``load_model`` when the model is not on it yet, and the racer's tail-light colour.
    """
    track = get_track(track_id)
    event = track.event
    if live_race(track.id) is not None:
        raise Conflict("this track has a live race; end and submit or discard it first")
    reg = db.session.scalar(db.select(EventRacer).filter_by(event_id=event.id, user_id=racer_id))
    if reg is None:
        raise ServiceError("that racer is not registered for this event", "racer_id")
    done = runs_done(track.id, racer_id)
    if event.max_runs_per_racer is not None and done >= event.max_runs_per_racer:
        raise Conflict(f"{reg.user.username} has used all runs ({done}/{event.max_runs_per_racer})", "racer_id")
    car = get_car(car_id) if car_id else None
    model = None
    if model_id:
        model = db.session.get(RacerModel, model_id)
        if model is None or model.status != AVAILABLE:
            raise ServiceError("that model is not available", "model_id")
        if model.owner_id != racer_id and not raced_by_proxy:
            raise ServiceError("that model belongs to another racer (tick 'raced by proxy' if intended)",
                               "model_id")
    if car is not None and model is not None:
        check_car_runs(car, model)
    race = Race(event_id=event.id, track_id=track.id, racer_id=racer_id, car_id=car.id if car else None,
                model_id=model.id if model else None, operator_id=actor.id, raced_by_proxy=bool(raced_by_proxy),
                status=READY, live_track_id=track.id, time_limit_ms=event.race_time_min * 60_000,
                lap_target=event.lap_target if event.ranking_method == "total_time" else None)
    db.session.add(race)
    db.session.flush()
    if car is not None:
        _prepare_car(actor, race, car, model, reg.colour)
    push_state(race)
    return race


def _prepare_car(actor, race: Race, car, model, colour: str) -> None:
    if model is not None and not any(m.get("model_id") == str(model.id) for m in car.loaded_models or []):
        send_commands(actor, [car.id], "load_model", {"model_id": model.id})
    send_commands(actor, [car.id], "set_tail_light", {"colour": colour})


def car_model(race: Race) -> dict | None:
    """Whether the race's model is on the race's car (:func:`drem.fleet.commands.model_load_state`
    plus ``ready``: True when loaded); None for a race without a car or without a model
    (hand-held timing, timer only: nothing to wait for)."""
    if race.car is None or race.model_id is None:
        return None
    load = model_load_state(race.car, race.model_id)
    return load | {"ready": load["state"] == "loaded"}


def _load_words(load: dict) -> str:
    words = load["state"] + (f" {round((load['progress'] or 0) * 100)}%" if load["state"] == "downloading" else "")
    return f"{load['hostname']}: {words}" + (f" ({load['reason']})" if load["reason"] else "")


def start_race(actor, race: Race, at=None, override: bool = False, override_reason: str = "") -> Race:
    """Start the clock (server time; ``at``: when it started, default now; ``actor`` None:
    the track's lap timer started it); the car starts driving its model after the commit.

    An operator's start is refused (Conflict, with the car's load state in the message)
    while the race's model is not on the race's car (:func:`car_model`), unless
    ``override`` with an ``override_reason`` (ServiceError without one), which is
    audited (``race.start_override``). Races without a car or model are never held, nor
    a start by the lap timer (``actor`` None: the crossing already happened)."""
    if actor is not None:
        check_operator(actor, race)
    _need(race, READY, action="start")
    load = car_model(race) if actor is not None else None
    if load is not None and not load["ready"]:
        if not override:
            raise Conflict(f"the model is not on the car yet ({_load_words(load)}); wait for it, "
                           "or tick override and give a reason")
        if not override_reason.strip():
            raise ServiceError("give a reason for starting without the model on the car", "override_reason")
        record_audit(actor, "race.start_override", "race", race.id, car=load["hostname"],
                     model_id=race.model_id, load_state=load["state"], reason=override_reason.strip())
    race.status, race.started_at = RUNNING, at or utcnow()
    if race.car_id and race.model_id:
        send_commands(actor, [race.car_id], "start_driving", {"model_id": race.model_id, "race_id": race.id})
    push_state(race, started=True)
    db.session.flush()
    return race


def pause_race(actor, race: Race) -> Race:
    """Freeze the clock."""
    check_operator(actor, race)
    _need(race, RUNNING, action="pause")
    race.status, race.paused_at = PAUSED, utcnow()
    push_state(race)
    db.session.flush()
    return race


def resume_race(actor, race: Race) -> Race:
    """Run the clock again; the paused time does not count."""
    check_operator(actor, race)
    _need(race, PAUSED, action="resume")
    now = utcnow()
    race.paused_total_ms += int((now - race.paused_at).total_seconds() * 1000)
    race.status, race.paused_at = RUNNING, None
    push_state(race)
    db.session.flush()
    return race


def end_race(actor, race: Race, reason: str = "operator") -> Race:
    """Stop the clock (status ``ended``, waiting for submit or discard); the car stops and
    its tail light turns white after the commit."""
    if actor is not None:
        check_operator(actor, race)
    _need(race, RUNNING, PAUSED, READY, action="end the race")
    now = utcnow()
    if race.status == PAUSED:
        race.paused_total_ms += int((now - race.paused_at).total_seconds() * 1000)
        race.paused_at = None
    race.status, race.ended_at = ENDED, now
    if race.started_at is None:
        race.started_at = now
    if race.car_id:
        send_commands(actor, [race.car_id], "stop_driving", {})
        send_commands(actor, [race.car_id], "set_tail_light", {"colour": "white"})
    push_state(race)
    db.session.flush()
    return race


def submit_race(actor, race: Race) -> Race:
    """Keep the ended race for the leaderboard; frees the track. A repeated submit of the
    same race answers the race as it is (never a duplicate)."""
    check_operator(actor, race)
    if race.status == SUBMITTED:
        return race
    _need(race, ENDED, action="submit")
    race.status, race.submitted_at, race.live_track_id = SUBMITTED, utcnow(), None
    record_audit(actor, "race.submit", "race", race.id, racer=race.racer.username, laps=len(race.laps))
    push_state(race, rerank=True)
    db.session.flush()
    return race


def discard_race(actor, race: Race) -> Race:
    """Throw the race away (its laps stop counting); frees the track and stops the car. Audited."""
    check_operator(actor, race)
    if race.status == DISCARDED:
        return race
    _need(race, *LIVE, action="discard")
    if race.status in (RUNNING, PAUSED):
        end_race(actor, race)
    race.status, race.live_track_id = DISCARDED, None
    record_audit(actor, "race.discard", "race", race.id, racer=race.racer.username, laps=len(race.laps))
    push_state(race, rerank=True)
    db.session.flush()
    return race


def take_over(actor, race: Race) -> Race:
    """Make ``actor`` the operator of a live race (the previous one becomes read-only). Audited."""
    _need(race, *LIVE, action="take over")
    record_audit(actor, "race.take_over", "race", race.id, previous=race.operator_id)
    race.operator_id = actor.id
    push_state(race)
    db.session.flush()
    return race


def race_state(race: Race, now=None) -> dict:
    """The live race as displays and consoles see it (times in ms; ``server_time`` UNIX s).

    ``version`` is the race row's optimistic-lock counter: it grows with every change of
    the race, so a console that gets an answer late (after a newer pushed state) can tell
    it is older and ignore it (same version: the later ``server_time`` is the newer).
    Each lap carries ``valid`` (:func:`drem.events.models.lap_is_valid` under the event's
    resets limit) and its time penalty (``penalty_ms``, ``penalty_reason``); ``best_lap_ms``
    is the best valid lap (without penalties). The race's own penalty and disqualification
    are ``penalty_ms``, ``penalty_reason``, ``disqualified``, ``disqualified_reason``;
    ``car_model`` (set-up only) is :func:`car_model`: is the model on the car yet.
    """
    version = race.version  # load the row first, so ``server_time`` is never older than the data
    now = now or utcnow()
    allowed = race.event.resets_allowed_per_lap
    laps = [{"lap_number": lap.lap_number, "time_ms": lap.time_ms, "resets": lap.resets,
             "invalidated": lap.invalidated, "dnf": lap.dnf, "valid": lap.is_valid(allowed),
             "source": lap.source, "id": lap.id, "penalty_ms": lap.penalty_ms, "penalty_reason": lap.penalty_reason}
            for lap in race.laps]
    valid = [lap["time_ms"] for lap in laps if lap["valid"]]
    return {
        "race_id": race.id, "version": version, "event_id": race.event_id, "track_id": race.track_id,
        "status": race.status, "live": race.status in LIVE,
        "racer": {"id": race.racer_id, "username": race.racer.username, "country_code": race.racer.country_code},
        "raced_by_proxy": race.raced_by_proxy, "car_id": race.car_id, "model_id": race.model_id,
        "operator": race.operator.username if race.operator else None, "operator_id": race.operator_id,
        "time_limit_ms": race.time_limit_ms, "elapsed_ms": clock.elapsed_ms(race, now),
        "time_left_ms": clock.time_left_ms(race, now), "time_up": clock.is_time_up(race, now),
        "server_time": now.timestamp(), "current_lap_ms": clock.current_lap_ms(race, now),
        "current_resets": race.current_resets, "lap_target": race.lap_target, "laps": laps,
        "best_lap_ms": min(valid) if valid else None, "last_lap_ms": laps[-1]["time_ms"] if laps else None,
        "resets_allowed_per_lap": allowed,
        "penalty_ms": race.penalty_ms, "penalty_reason": race.penalty_reason,
        "disqualified": race.disqualified, "disqualified_reason": race.disqualified_reason,
        "car_model": car_model(race) if race.status == READY else None,
    }


_PUSHES = "drem_race_pushes"


def push_state(race: Race, lap_id: int | None = None, rerank: bool = False, started: bool = False) -> None:
    """After the commit, announce the race once for this transaction, however often this
    is called: the race state goes to the timekeeper consoles (``race_state`` in room
    ``tk:<track_id>``) and one signal goes to the other packages:
    ``race_changed`` when any call asked to ``rerank`` (a lap edited or removed, the race
    submitted or discarded), else ``lap_recorded`` with the last lap stored (``lap_id``),
    else ``race_state_changed`` (with the leaderboard versions when the race ``started``
    in this transaction). Each carries the race state as it is after the commit.
    """
    session = db.session()
    transaction = session.get_transaction() or session.begin()
    holder = session.info.get(_PUSHES)
    if holder is None or holder[0] is not transaction:  # the first push of this transaction
        holder = session.info[_PUSHES] = (transaction, {}, {})
        before_commit(lambda pending=holder[1], races=holder[2]: _capture(pending, races))
        after_commit(lambda pending=holder[1]: _announce(pending))
    holder[2][race.id] = race
    entry = holder[1].setdefault(race.id, {"event_id": race.event_id, "track_id": race.track_id,
                                           "lap_id": None, "rerank": False, "started": False})
    if lap_id is not None:
        entry["lap_id"] = lap_id
    entry["rerank"] = entry["rerank"] or rerank
    entry["started"] = entry["started"] or started


def _capture(pending: dict[int, dict], races: dict[int, Race]) -> None:
    """The before-commit side of :func:`push_state`: each race's state as it is about to
    be committed (``entry["state"]``; None for a deleted race), read from the rows the
    transaction holds (the commit expires them; reading them again after it cost two
    statements and every lap of the race as new objects). Loads what :func:`race_state`
    needs and the transaction has not read yet (event, racer, operator) in one statement."""
    kept = {rid: race for rid, race in races.items()
            if not (sa.inspect(race).deleted or sa.inspect(race).was_deleted or sa.inspect(race).detached)}
    unloaded = [rid for rid, race in kept.items() if {"event", "racer", "operator"} & sa.inspect(race).unloaded]
    if unloaded:
        db.session.scalars(db.select(Race).where(Race.id.in_(unloaded)).options(
            joinedload(Race.event), joinedload(Race.racer), joinedload(Race.operator))).unique().all()
    for rid, entry in pending.items():
        entry["state"] = race_state(kept[rid]) if rid in kept else None
        lap = db.session.get(Lap, entry["lap_id"]) if entry["lap_id"] is not None and rid in kept else None
        entry["lap"] = lap_facts(kept[rid], lap) if lap is not None and lap.race_id == rid else None


def lap_facts(race: Race, lap: Lap) -> dict:
    """A stored lap with what ranking it needs from its race, racer and event, as the
    ``lap`` of the ``lap_recorded`` signal: ``{"event_id", "track_id", "racer_id", "status",
    "raced_by_proxy", "started_at", "created_at" (aware datetimes or None), "lap_number",
    "time_ms" (ms), "resets", "invalidated", "dnf", "recorded_at", "username",
    "country_code", "ranking_method", "resets_allowed_per_lap", "averaging_window",
    "lap_target"}``. Read from loaded rows (the leaderboard then needs no query of its own)."""
    event, racer = race.event, race.racer
    return {"event_id": race.event_id, "track_id": race.track_id, "racer_id": race.racer_id,
            "status": race.status, "raced_by_proxy": race.raced_by_proxy, "started_at": race.started_at,
            "created_at": race.created_at, "lap_number": lap.lap_number, "time_ms": lap.time_ms,
            "resets": lap.resets, "invalidated": lap.invalidated, "dnf": lap.dnf, "recorded_at": lap.recorded_at,
            "username": racer.username, "country_code": racer.country_code,
            "ranking_method": event.ranking_method, "resets_allowed_per_lap": event.resets_allowed_per_lap,
            "averaging_window": event.averaging_window, "lap_target": event.lap_target}


def _reload_race(race_id: int) -> Race | None:
    """The race as committed, with what :func:`race_state` reads (event, racer, operator,
    laps) in two statements instead of five lazy loads (the commit expired them all)."""
    return db.session.scalar(
        db.select(Race).where(Race.id == race_id)
        .options(joinedload(Race.event), joinedload(Race.racer), joinedload(Race.operator),
                 selectinload(Race.laps))
        .execution_options(populate_existing=True))


def _announce(pending: dict[int, dict]) -> None:
    """The after-commit side of :func:`push_state`: one announcement per race."""
    for race_id, entry in pending.items():
        bump = bump_of(("lap", entry["lap_id"])) if entry["lap_id"] is not None \
            else bump_of(("race", race_id)) if entry["started"] else None
        if "state" in entry:  # captured just before the commit (_capture)
            state = entry["state"]
        else:
            fresh = _reload_race(race_id)
            state = race_state(fresh) if fresh is not None else None
        if entry["rerank"]:
            race_changed.send("timekeeper", race_id=race_id, event_id=entry["event_id"],
                              track_id=entry["track_id"], state=state)
        elif state is not None and entry["lap_id"] is not None:
            lap_recorded.send("timekeeper", race_id=race_id, lap_id=entry["lap_id"], state=state, bump=bump,
                              lap=entry.get("lap"))
        elif state is not None:
            race_state_changed.send("timekeeper", state=state, bump=bump)
        if state is not None:
            socketio.emit("race_state", state, namespace="/timekeeper", to=f"tk:{entry['track_id']}")
