"""presence: booths, breakout rooms, huddles and their members

Who is inside a booth or room right now is live presence (leases), not rows; these are the
durable definitions and limits, plus huddle membership (durable, optimistic locking).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:11:39.048703
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from headcount.ledger.types import UTCDateTime

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "booths",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("event_id", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tier", sa.String(length=40), nullable=False),
        sa.Column("chat_enabled", sa.Boolean(), nullable=False),
        sa.Column("video_enabled", sa.Boolean(), nullable=False),
        sa.Column("max_visitors", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "max_visitors IS NULL OR max_visitors >= 0", name=op.f("ck_booths_max_visitors")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_booths_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booths")),
    )
    with op.batch_alter_table("booths", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_booths_event_id"), ["event_id"], unique=False)

    op.create_table(
        "huddles",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("event_id", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("capacity >= 0", name=op.f("ck_huddles_capacity_non_negative")),
        sa.CheckConstraint("members >= 0", name=op.f("ck_huddles_members_non_negative")),
        sa.CheckConstraint("version >= 0", name=op.f("ck_huddles_version_non_negative")),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_huddles_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_huddles")),
    )
    with op.batch_alter_table("huddles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_huddles_event_id"), ["event_id"], unique=False)

    op.create_table(
        "breakout_rooms",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("session_id", sa.String(length=80), nullable=False),
        sa.Column("event_id", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_breakout_rooms_status")),
        sa.CheckConstraint("capacity >= 0", name=op.f("ck_breakout_rooms_capacity_non_negative")),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_breakout_rooms_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_breakout_rooms_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breakout_rooms")),
    )
    with op.batch_alter_table("breakout_rooms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_breakout_rooms_event_id"), ["event_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_breakout_rooms_session_id"), ["session_id"], unique=False
        )

    op.create_table(
        "huddle_members",
        sa.Column("huddle_id", sa.String(length=80), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("joined_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["huddle_id"], ["huddles.id"], name=op.f("fk_huddle_members_huddle_id_huddles")
        ),
        sa.PrimaryKeyConstraint("huddle_id", "user_id", name=op.f("pk_huddle_members")),
    )
    with op.batch_alter_table("huddle_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_huddle_members_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("huddle_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_huddle_members_user_id"))

    op.drop_table("huddle_members")
    with op.batch_alter_table("breakout_rooms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_breakout_rooms_session_id"))
        batch_op.drop_index(batch_op.f("ix_breakout_rooms_event_id"))

    op.drop_table("breakout_rooms")
    with op.batch_alter_table("huddles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_huddles_event_id"))

    op.drop_table("huddles")
    with op.batch_alter_table("booths", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_booths_event_id"))

    op.drop_table("booths")
