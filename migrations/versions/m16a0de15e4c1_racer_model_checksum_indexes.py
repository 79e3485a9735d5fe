"""Indexes on racer models' checksums, for "same model as" on the staff detail page
(issue 16).

Revision ID: m16a0de15e4c1
Revises: p16a0import01
"""
from alembic import op

revision = 'm16a0de15e4c1'
down_revision = 'p16a0import01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('racer_models', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_racer_models_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_racer_models_model_pb_sha256'), ['model_pb_sha256'], unique=False)


def downgrade():
    with op.batch_alter_table('racer_models', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_racer_models_model_pb_sha256'))
        batch_op.drop_index(batch_op.f('ix_racer_models_sha256'))
