"""Enrolment: the registration desk, bulk enrolment from a CSV file and the walk-up form of
the timekeeper console. Creates racer accounts (drem.auth) and enrols them in events
through the one events service function (drem.events.service.register_racer)."""
