"""Donkey per-model settings on racer models (issue 14: throttle range, crop).

Revision ID: d0c4e7a14b02
Revises: f18b5e55104a
"""
import sqlalchemy as sa
from alembic import op

revision = 'd0c4e7a14b02'
down_revision = 'f18b5e55104a'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('racer_models', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model_settings', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('racer_models', schema=None) as batch_op:
        batch_op.drop_column('model_settings')
