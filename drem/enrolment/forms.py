"""Enrolment forms (Flask-WTF: CSRF on every form). Values are checked by the services."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import EmailField, HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from drem.auth.forms import CountryField


class DeskForm(FlaskForm):
    """The desk's new racer: name, country, e-mail, and the event to enrol them in
    (choices: the open events, then "no event"; set by the view)."""

    username = StringField("Racer name", validators=[DataRequired()])
    country_code = CountryField()
    email = EmailField("E-mail (optional)", validators=[Optional(), Length(max=254)])
    event_id = SelectField("Enrol in event", validate_choice=False)


class CsvUploadForm(FlaskForm):
    """The CSV file to preview."""

    file = FileField("CSV file (name,country,email)")


class CsvImportForm(FlaskForm):
    """The previewed file's text, sent back by the "Import" button."""

    csv = HiddenField()
