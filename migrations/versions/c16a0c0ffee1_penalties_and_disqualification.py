"""time penalties per lap and per race, race disqualification (issue 16)

Revision ID: c16a0c0ffee1
Revises: q16a0e0e0001
Create Date: 2026-11-29 22:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c16a0c0ffee1'
down_revision = 'q16a0e0e0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('laps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('penalty_ms', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('penalty_reason', sa.String(length=200), server_default='', nullable=False))
    with op.batch_alter_table('races', schema=None) as batch_op:
        batch_op.add_column(sa.Column('penalty_ms', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('penalty_reason', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('disqualified', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('disqualified_reason', sa.String(length=200), server_default='',
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('races', schema=None) as batch_op:
        batch_op.drop_column('disqualified_reason')
        batch_op.drop_column('disqualified')
        batch_op.drop_column('penalty_reason')
        batch_op.drop_column('penalty_ms')
    with op.batch_alter_table('laps', schema=None) as batch_op:
        batch_op.drop_column('penalty_reason')
        batch_op.drop_column('penalty_ms')
