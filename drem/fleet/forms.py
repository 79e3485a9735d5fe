"""Fleet forms: CSRF carriers for the cars page (fields are validated by the services)."""

from flask_wtf import FlaskForm


class FleetActionForm(FlaskForm):
    """Any button on the cars page that posts (fleet, activation code, car changes)."""
