"""The race queue of each track: who races next, check-in from the racer's phone, the
console's "call next", and "next up" on the displays (docs/operations.md, "Race queue").

Sits between ``drem.leaderboard`` (whose displays and commentator show "next up") and
``drem.timekeeper`` (whose races move queue entries on, through signals received in
:mod:`drem.race_queue.subscribers`).
"""
