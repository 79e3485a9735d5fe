"""Leaderboard package forms (Flask-WTF: CSRF on every form)."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired


class ImportForm(FlaskForm):
    """The event import page: an ``export.json`` file from a drem event export."""

    file = FileField("Event export (export.json)", validators=[FileRequired("choose the export.json file")])
