"""Account forms (Flask-WTF: CSRF on every form)."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from drem.platform.countries import country_choices
from drem.platform.permissions import ROLES


class CountryField(SelectField):
    """A required country ``<select>``: ISO 3166-1 codes with flag and name. The choice is
    checked by the service (:func:`drem.platform.countries.check_country`), so an unknown
    code gets the same message from a form and from the API."""

    def __init__(self, label: str = "Country", **kwargs):
        super().__init__(label, choices=lambda: [("", "choose a country…"), *country_choices()],
                         validate_choice=False, **kwargs)


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=20)])
    password = PasswordField("Password", validators=[DataRequired()])


class CodeLoginForm(FlaskForm):
    code = StringField("Sign-in code", validators=[DataRequired(), Length(max=20)])


class SignupForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])
    email = EmailField("E-mail (optional)", validators=[Optional(), Length(max=254)])
    country_code = CountryField()


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[Optional()])
    new_password = PasswordField("New password", validators=[DataRequired()])


class TokenForm(FlaskForm):
    name = StringField("Token name", validators=[DataRequired(), Length(max=80)])


class CountryForm(FlaskForm):
    """The account page's country."""

    country_code = CountryField()


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[(r, r) for r in ROLES])

