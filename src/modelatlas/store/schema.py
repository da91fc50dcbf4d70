"""Tables of the store, as SQLAlchemy 2 ORM classes. Changes go through a new migration."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """A time read back from the store, zoned: SQLite keeps no zone, and we write UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class RegisteredModel(Base):
    """A model the user added (an endpoint, a hosted model, a file): its catalog record."""

    __tablename__ = "registered_models"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    record: Mapped[dict] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(64), default="user")
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Call(Base):
    """One call through the Model wrapper: counts and times, never the prompt."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    ok: Mapped[bool] = mapped_column(Boolean)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    latency_s: Mapped[float] = mapped_column(Float, default=0.0)
    ttft_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    tokens_per_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class EvalResult(Base):
    """One aggregate score of one model on one dataset in one evaluation run."""

    __tablename__ = "eval_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(255), index=True)
    model_id: Mapped[str] = mapped_column(String(255), index=True)
    dataset: Mapped[str] = mapped_column(String(255))
    dataset_hash: Mapped[str | None] = mapped_column(String(128), nullable=True)
    strategy: Mapped[str | None] = mapped_column(String(128), nullable=True)
    metric: Mapped[str] = mapped_column(String(128))
    value: Mapped[float] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float, nullable=True)
    ci_high: Mapped[float | None] = mapped_column(Float, nullable=True)
    n: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Run(Base):
    """An evaluation run: its settings (JSON) and state."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dataset_path: Mapped[str] = mapped_column(Text)
    dataset_hash: Mapped[str] = mapped_column(String(64), index=True)
    dataset_n: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="running")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The process that runs it, refreshed while it runs: a dead owner means the run was interrupted.
    owner_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    owner_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RunItem(Base):
    """One item answered by one arm in a run: written the moment it is done."""

    __tablename__ = "run_items"
    __table_args__ = (UniqueConstraint("run_id", "model_id", "strategy", "item_id", name="uq_run_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    model_id: Mapped[str] = mapped_column(String(255))
    strategy: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[str] = mapped_column(String(255))
    item_index: Mapped[int] = mapped_column(Integer)
    output: Mapped[dict] = mapped_column(JSON)
    scores: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RunPair(Base):
    """A pairwise judge verdict on one item of a run."""

    __tablename__ = "run_pairs"
    __table_args__ = (UniqueConstraint("run_id", "metric", "a", "b", "item_id", name="uq_run_pair"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    metric: Mapped[str] = mapped_column(String(64))
    a: Mapped[str] = mapped_column(String(255))
    b: Mapped[str] = mapped_column(String(255))
    item_id: Mapped[str] = mapped_column(String(255))
    score: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CachedResponse(Base):
    """The response cache: one answer per (model identity, rendered prompt, parameters) key."""

    __tablename__ = "response_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_key: Mapped[str] = mapped_column(Text)
    response: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FineTune(Base):
    """A LoRA fine-tune: its base, data, settings (JSON), state and final losses."""

    __tablename__ = "finetunes"
    __table_args__ = (Index("ix_finetunes_base_data", "base_model", "data_hash"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(255), index=True)
    base_model: Mapped[str] = mapped_column(String(255))
    data_hash: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="running")
    train_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    val_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    adapter_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The process that trains it: a "running" row whose process is gone was interrupted.
    owner_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    owner_host: Mapped[str | None] = mapped_column(String(255), nullable=True)


class FineTuneStep(Base):
    """One optimizer step of a fine-tune: its training loss, and the validation loss when measured."""

    __tablename__ = "finetune_steps"
    __table_args__ = (UniqueConstraint("finetune_id", "step", name="uq_finetune_step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    finetune_id: Mapped[str] = mapped_column(String(64), index=True)
    step: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int] = mapped_column(Integer)
    train_loss: Mapped[float] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float, nullable=True)


class ApiKey(Base):
    """A key for `modelatlas serve`: its limits, and only a salted hash of its secret."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public part of the secret
    name: Mapped[str] = mapped_column(String(128), unique=True)
    salt: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(128))
    rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    budget_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    models: Mapped[list | None] = mapped_column(JSON, nullable=True)  # None: every served model
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class UsageRecord(Base):
    """One request to `modelatlas serve`: who, which model, tokens sent and received, cost."""

    __tablename__ = "usage_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    key_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    model_id: Mapped[str] = mapped_column(String(255), index=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    latency_s: Mapped[float] = mapped_column(Float, default=0.0)
    streamed: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    # Written "in_flight" when the request starts, "done" when it ends: a server killed
    # mid-request leaves its requests in flight, not missing. "interrupted": open at a stop.
    request_id: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True, index=True)
    state: Mapped[str] = mapped_column(String(16), default="done", server_default="done")
    # The server process that wrote the row: a restarted server (or `modelatlas usage`) turns
    # the in-flight rows of a dead one into "interrupted".
    server_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    server_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Seconds of audio a transcription took in: what speech models are billed by (0 for text).
    audio_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # Pictures an image-generation request made: what image models are billed by (0 for text).
    images: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ArenaVote(Base):
    """One blind comparison in the studio's arena: the prompt, both answers and the verdict."""

    __tablename__ = "arena_votes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prompt: Mapped[str] = mapped_column(Text)
    model_a: Mapped[str] = mapped_column(String(255), index=True)
    model_b: Mapped[str] = mapped_column(String(255), index=True)
    answer_a: Mapped[str] = mapped_column(Text, default="")
    answer_b: Mapped[str] = mapped_column(Text, default="")
    winner: Mapped[str] = mapped_column(String(16))  # "a", "b", "tie" or "both_bad"
    # What was compared: "text" answers or "image" pictures (leaderboards never mix the two).
    kind: Mapped[str] = mapped_column(String(16), default="text", server_default="text", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class StudioJob(Base):
    """Long work started from the studio (an evaluation): its state survives a page reload."""

    __tablename__ = "studio_jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # queued, running, done, failed
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    run_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
