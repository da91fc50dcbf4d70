"""Hardening: who owns a running run (pid, host, heartbeat) and a fine-tune (pid, host);
usage records opened in flight.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _runs_upgrade()
    _usage_upgrade()
    _finetunes_upgrade()


def downgrade() -> None:
    _finetunes_downgrade()
    _usage_downgrade()
    _runs_downgrade()


# Runs: the owner of a running run.
def _runs_upgrade() -> None:
    # batch mode: SQLite cannot drop columns in place, so the downgrade needs it; same for both
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("owner_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("owner_host", sa.String(255), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def _runs_downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("owner_host")
        batch.drop_column("owner_pid")


# Usage: records written when a request starts.
def _usage_upgrade() -> None:
    # A record is written "in_flight" when a request starts and completed ("done") when it
    # ends, found again by its request_id; the rows already there are finished requests.
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("request_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("state", sa.String(16), nullable=False, server_default="done"))
        batch.add_column(sa.Column("server_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("server_host", sa.String(255), nullable=True))
    op.create_index("ix_usage_records_request_id", "usage_records", ["request_id"], unique=True)


def _usage_downgrade() -> None:
    op.drop_index("ix_usage_records_request_id", "usage_records")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("server_host")
        batch.drop_column("server_pid")
        batch.drop_column("state")
        batch.drop_column("request_id")


# Fine-tunes: the process that trains (a dead one left its row "running").
def _finetunes_upgrade() -> None:
    with op.batch_alter_table("finetunes") as batch:
        batch.add_column(sa.Column("owner_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("owner_host", sa.String(255), nullable=True))


def _finetunes_downgrade() -> None:
    with op.batch_alter_table("finetunes") as batch:
        batch.drop_column("owner_host")
        batch.drop_column("owner_pid")
