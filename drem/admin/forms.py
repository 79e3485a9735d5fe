"""Admin forms (Flask-WTF: CSRF on every form). The rules (usernames, roles, passwords)
live in the services; the forms carry the fields and their choices."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from drem.platform.permissions import RACER, ROLES

#: Roles the Users page creates accounts with (racers are created at the registration desk).
STAFF_ROLES = tuple(r for r in ROLES if r != RACER)


class StaffUserForm(FlaskForm):
    """A new staff account; an empty password makes drem generate one, shown once."""

    username = StringField("Username", validators=[DataRequired(), Length(max=20)])
    role = SelectField("Role", choices=[(r, r) for r in STAFF_ROLES])
    password = PasswordField("Password (empty: generate one)", validators=[Optional(), Length(max=200)])
    email = EmailField("E-mail (optional)", validators=[Optional(), Length(max=254)])


class ResetPasswordForm(FlaskForm):
    """A new password for a user; empty: drem generates one, shown once."""

    password = PasswordField("New password (empty: generate one)", validators=[Optional(), Length(max=200)])
