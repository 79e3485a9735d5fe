"""race queue per track: race_queues (version, skip_back) and queue_entries

Revision ID: q16a0e0e0001
Revises: e16a0e4201e1
Create Date: 2026-11-29 22:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'q16a0e0e0001'
down_revision = 'e16a0e4201e1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'race_queues',
        sa.Column('track_id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), server_default='0', nullable=False),
        sa.Column('skip_back', sa.Integer(), server_default='3', nullable=False),
        sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('track_id'),
    )
    op.create_table(
        'queue_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('track_id', sa.Integer(), nullable=False),
        sa.Column('racer_id', sa.Integer(), nullable=False),
        sa.Column('model_id', sa.Integer(), nullable=True),
        sa.Column('car_id', sa.Integer(), nullable=True),
        sa.Column('race_id', sa.Integer(), nullable=True),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('position', sa.Integer(), nullable=True),
        sa.Column('active_track_id', sa.Integer(), nullable=True),
        sa.Column('skips', sa.Integer(), server_default='0', nullable=False),
        sa.Column('added_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('checked_in_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('called_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['racer_id'], ['users.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['model_id'], ['racer_models.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['car_id'], ['cars.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['race_id'], ['races.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['added_by_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('active_track_id', 'racer_id', name='uq_queue_entries_active_racer'),
    )
    with op.batch_alter_table('queue_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_queue_entries_track_id'), ['track_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_queue_entries_racer_id'), ['racer_id'], unique=False)


def downgrade():
    with op.batch_alter_table('queue_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_queue_entries_racer_id'))
        batch_op.drop_index(batch_op.f('ix_queue_entries_track_id'))
    op.drop_table('queue_entries')
    op.drop_table('race_queues')
