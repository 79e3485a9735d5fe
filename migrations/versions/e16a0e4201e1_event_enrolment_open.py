"""events.enrolment_open: racers may be enrolled (desk, CSV, walk-up, Register) while true

Revision ID: e16a0e4201e1
Revises: m16a0de15e4c1
Create Date: 2026-11-29 22:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e16a0e4201e1'
down_revision = 'm16a0de15e4c1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('enrolment_open', sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('enrolment_open')
