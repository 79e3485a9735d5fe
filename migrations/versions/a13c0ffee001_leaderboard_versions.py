"""leaderboard versions on events and tracks

Revision ID: a13c0ffee001
Revises: 875fae335e73
Create Date: 2026-11-29 18:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a13c0ffee001'
down_revision = '875fae335e73'
branch_labels = None
depends_on = None


def upgrade():
    # bumped by drem.events.versions whenever a leaderboard's content changes
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('leaderboard_version', sa.Integer(), server_default='0', nullable=False))

    with op.batch_alter_table('tracks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('leaderboard_version', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('tracks', schema=None) as batch_op:
        batch_op.drop_column('leaderboard_version')

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('leaderboard_version')
