"""presence: booths, breakout rooms, huddles and their members

Who is inside a booth or room right now is live presence (leases), not rows; these are the
durable definitions and limits, plus huddle membership (durable, optimistic locking).
"""

import sqlalchemy as sa
from alembic import op

from headcount.migrations import columns

revision, down_revision = "0003", "0002"
branch_labels = depends_on = None


def upgrade() -> None:
    op.create_table(
        "booths",
        columns.key(),
        columns.key("event_id"),
        columns.label(),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tier", sa.String(length=40), nullable=False),
        sa.Column("chat_enabled", sa.Boolean(), nullable=False),
        sa.Column("video_enabled", sa.Boolean(), nullable=False),
        sa.Column("max_visitors", sa.Integer(), nullable=True),
        *columns.stamps(),
        sa.CheckConstraint(
            "max_visitors IS NULL OR max_visitors >= 0", name=op.f("ck_booths_max_visitors")
        ),
        columns.reference("booths", "event_id", "events"),
        columns.primary_key("booths"),
    )
    columns.index("booths", "event_id")

    op.create_table(
        "huddles",
        columns.key(),
        columns.key("event_id"),
        columns.label(),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        *columns.stamps(),
        sa.CheckConstraint("capacity >= 0", name=op.f("ck_huddles_capacity_non_negative")),
        sa.CheckConstraint("members >= 0", name=op.f("ck_huddles_members_non_negative")),
        sa.CheckConstraint("version >= 0", name=op.f("ck_huddles_version_non_negative")),
        columns.reference("huddles", "event_id", "events"),
        columns.primary_key("huddles"),
    )
    columns.index("huddles", "event_id")

    op.create_table(
        "breakout_rooms",
        columns.key(),
        columns.key("session_id"),
        columns.key("event_id"),
        columns.label(),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        *columns.stamps(),
        columns.moment("closed_at", nullable=True),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_breakout_rooms_status")),
        sa.CheckConstraint("capacity >= 0", name=op.f("ck_breakout_rooms_capacity_non_negative")),
        columns.reference("breakout_rooms", "event_id", "events"),
        columns.reference("breakout_rooms", "session_id", "sessions"),
        columns.primary_key("breakout_rooms"),
    )
    columns.index("breakout_rooms", "event_id", "session_id")

    op.create_table(
        "huddle_members",
        columns.key("huddle_id"),
        columns.subject("user_id"),
        columns.moment("joined_at"),
        columns.reference("huddle_members", "huddle_id", "huddles"),
        columns.primary_key("huddle_members", "huddle_id", "user_id"),
    )
    columns.index("huddle_members", "user_id")


def downgrade() -> None:
    columns.drop_index("huddle_members", "user_id")
    op.drop_table("huddle_members")
    columns.drop_index("breakout_rooms", "session_id", "event_id")
    op.drop_table("breakout_rooms")
    columns.drop_index("huddles", "event_id")
    op.drop_table("huddles")
    columns.drop_index("booths", "event_id")
    op.drop_table("booths")
