"""Registered models: the user's own endpoints, hosted models and files.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False, server_default="user"),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registered_models")
