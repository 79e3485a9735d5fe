"""Account forms (Flask-WTF: CSRF on every form)."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from drem.platform.permissions import ROLES


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=20)])
    password = PasswordField("Password", validators=[DataRequired()])


class CodeLoginForm(FlaskForm):
    code = StringField("Sign-in code", validators=[DataRequired(), Length(max=20)])


class SignupForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])
    email = EmailField("E-mail (optional)", validators=[Optional(), Length(max=254)])
    country_code = StringField("Country code (e.g. DE)", validators=[Optional(), Length(min=2, max=2)])


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[Optional()])
    new_password = PasswordField("New password", validators=[DataRequired()])


class TokenForm(FlaskForm):
    name = StringField("Token name", validators=[DataRequired(), Length(max=80)])


class RacerForm(FlaskForm):
    username = StringField("Racer name", validators=[DataRequired()])
    country_code = StringField("Country code", validators=[Optional(), Length(min=2, max=2)])
    email = EmailField("E-mail (optional)", validators=[Optional(), Length(max=254)])


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[(r, r) for r in ROLES])

