"""cars report the model formats they run and their frame rate (issue 14)

Revision ID: c4a5f0e14a01
Revises: a13c0ffee001
Create Date: 2026-11-29 19:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c4a5f0e14a01'
down_revision = 'a13c0ffee001'
branch_labels = None
depends_on = None


def upgrade():
    # model_formats: null until the car's first heartbeat names them (then checked on load)
    with op.batch_alter_table('cars', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model_formats', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('fps', sa.Float(), nullable=True))


def downgrade():
    with op.batch_alter_table('cars', schema=None) as batch_op:
        batch_op.drop_column('fps')
        batch_op.drop_column('model_formats')
