"""Usage records count the images a request made (issue 14): image models are billed per
picture, and `modelatlas usage` shows the images.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The rows already there are text and speech requests: no images.
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("images", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    # batch mode: SQLite cannot drop a column in place
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("images")
