"""Arena votes say what was compared (issue 14): "text" answers or "image" pictures, so that the
studio fits a separate leaderboard for image battles and never ranks the two kinds together.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The votes already there are text battles: the arena compared nothing else before.
    with op.batch_alter_table("arena_votes") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="text"))
        batch.create_index("ix_arena_votes_kind", ["kind"])


def downgrade() -> None:
    # batch mode: SQLite cannot drop a column in place
    with op.batch_alter_table("arena_votes") as batch:
        batch.drop_index("ix_arena_votes_kind")
        batch.drop_column("kind")
