"""Session version on users, expiry on API tokens (issue 18).

Revision ID: f18b5e55104a
Revises: c4a5f0e14a01
"""
import sqlalchemy as sa
from alembic import op

from drem.platform.db_types import UTCDateTime

revision = 'f18b5e55104a'
down_revision = 'c4a5f0e14a01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_version')
