"""Usage records count the audio a transcription took in (issue 13): speech models are billed
per minute of audio, and `modelatlas usage` shows the seconds.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The rows already there are text requests: no audio.
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("audio_seconds", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    # batch mode: SQLite cannot drop a column in place
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("audio_seconds")
