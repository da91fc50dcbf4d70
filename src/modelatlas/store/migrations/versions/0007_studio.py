"""The studio's arena votes and its long-running jobs.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "arena_votes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("model_a", sa.String(255), nullable=False),
        sa.Column("model_b", sa.String(255), nullable=False),
        sa.Column("answer_a", sa.Text(), nullable=False),
        sa.Column("answer_b", sa.Text(), nullable=False),
        sa.Column("winner", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    for name in ("model_a", "model_b", "created_at"):
        op.create_index(f"ix_arena_votes_{name}", "arena_votes", [name])
    op.create_table(
        "studio_jobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_studio_jobs_created_at", "studio_jobs", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_studio_jobs_created_at", "studio_jobs")
    op.drop_table("studio_jobs")
    for name in ("created_at", "model_b", "model_a"):
        op.drop_index(f"ix_arena_votes_{name}", "arena_votes")
    op.drop_table("arena_votes")
