"""staged_imports: an uploaded event export between the import page's preview and "Import"

Revision ID: p16a0import01
Revises: b15c0ffee015
Create Date: 2026-11-29 22:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'p16a0import01'
down_revision = 'b15c0ffee015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'staged_imports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('document', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('staged_imports', schema=None) as batch_op:
        batch_op.create_index('ix_staged_imports_user_id', ['user_id'])
        batch_op.create_index('ix_staged_imports_created_at', ['created_at'])


def downgrade():
    op.drop_table('staged_imports')
