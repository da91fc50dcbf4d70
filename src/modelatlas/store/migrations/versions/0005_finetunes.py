"""Fine-tunes and their per-step losses.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "finetunes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("model_id", sa.String(255), nullable=False),
        sa.Column("base_model", sa.String(255), nullable=False),
        sa.Column("data_hash", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("train_loss", sa.Float(), nullable=True),
        sa.Column("val_loss", sa.Float(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("adapter_path", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_finetunes_model_id", "finetunes", ["model_id"])
    op.create_index("ix_finetunes_base_data", "finetunes", ["base_model", "data_hash"])
    op.create_table(
        "finetune_steps",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("finetune_id", sa.String(64), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("train_loss", sa.Float(), nullable=False),
        sa.Column("val_loss", sa.Float(), nullable=True),
        sa.UniqueConstraint("finetune_id", "step", name="uq_finetune_step"),
    )
    op.create_index("ix_finetune_steps_finetune_id", "finetune_steps", ["finetune_id"])


def downgrade() -> None:
    op.drop_index("ix_finetune_steps_finetune_id", "finetune_steps")
    op.drop_table("finetune_steps")
    op.drop_index("ix_finetunes_base_data", "finetunes")
    op.drop_index("ix_finetunes_model_id", "finetunes")
    op.drop_table("finetunes")
