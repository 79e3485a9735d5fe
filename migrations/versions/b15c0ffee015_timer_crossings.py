"""timer activation codes, timer status, every crossing kept, first crossing starts the race

Revision ID: b15c0ffee015
Revises: d0c4e7a14b02
Create Date: 2026-11-29 19:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b15c0ffee015'
down_revision = 'd0c4e7a14b02'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('timer_devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hostname', sa.String(length=63), nullable=True))
        batch_op.add_column(sa.Column('software_version', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('connected', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('sid', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('clock_offset_ms', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('round_trip_ms', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sensors', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('last_crossing_at', sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        'timer_activation_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.Column('track_id', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('timer_id', sa.Integer(), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['timer_id'], ['timer_devices.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('code_hash'),
    )
    op.create_table(
        'track_timing',
        sa.Column('track_id', sa.Integer(), nullable=False),
        sa.Column('first_crossing_starts_race', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('track_id'),
    )
    op.create_table(
        'timer_crossings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('timer_id', sa.Integer(), nullable=False),
        sa.Column('track_id', sa.Integer(), nullable=False),
        sa.Column('race_id', sa.Integer(), nullable=True),
        sa.Column('crossing_id', sa.String(length=48), nullable=False),
        sa.Column('sensor', sa.Integer(), nullable=False, server_default='1'),
        sa.Column('device_time_ms', sa.BigInteger(), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=False, server_default=''),
        sa.Column('lap_id', sa.Integer(), nullable=True),
        sa.Column('restored_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['timer_id'], ['timer_devices.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['race_id'], ['races.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['lap_id'], ['laps.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('timer_id', 'crossing_id', name='uq_timer_crossings_timer_crossing'),
    )
    with op.batch_alter_table('timer_crossings', schema=None) as batch_op:
        batch_op.create_index('ix_timer_crossings_race_id', ['race_id'])
        batch_op.create_index('ix_timer_crossings_track_id', ['track_id'])


def downgrade():
    with op.batch_alter_table('timer_crossings', schema=None) as batch_op:
        batch_op.drop_index('ix_timer_crossings_track_id')
        batch_op.drop_index('ix_timer_crossings_race_id')
    op.drop_table('timer_crossings')
    op.drop_table('track_timing')
    op.drop_table('timer_activation_codes')
    with op.batch_alter_table('timer_devices', schema=None) as batch_op:
        for column in ('last_crossing_at', 'sensors', 'round_trip_ms', 'clock_offset_ms', 'sid', 'connected',
                       'software_version', 'hostname'):
            batch_op.drop_column(column)
