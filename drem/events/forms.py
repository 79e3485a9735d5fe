"""Event forms. Field validation lives in ``events.service`` (one rule for HTML and
JSON); the forms carry the CSRF token and the choices shown in the page."""

from flask_wtf import FlaskForm
from wtforms import SelectField


class EventForm(FlaskForm):
    """CSRF carrier for the event create/edit page (fields are read by the service)."""


class TrackForm(FlaskForm):
    """CSRF carrier for the track add/edit form."""


class AddRacerForm(FlaskForm):
    user_id = SelectField("Racer", coerce=int)
