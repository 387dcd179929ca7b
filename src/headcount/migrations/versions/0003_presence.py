"""presence: booths, breakout rooms, huddles and their members

Who is inside a booth or room right now is live presence (leases), not rows; these are the
durable definitions and limits, plus huddle membership (durable, optimistic locking).
"""

from headcount.migrations import columns

revision, down_revision = "0003", "0002"


def upgrade() -> None:
    columns.owned(
        "booths",
        columns.label(),
        columns.text("description"),
        columns.string("tier", 40),
        columns.flag("chat_enabled"),
        columns.flag("video_enabled"),
        columns.number("max_visitors", nullable=True),
        *columns.stamps(),
        checks={"max_visitors": "max_visitors IS NULL OR max_visitors >= 0"},
        indexed=["event_id"],
    )
    columns.owned(
        "huddles",
        columns.label(),
        columns.text("topic"),
        columns.number("capacity"),
        columns.number("members"),
        columns.number("version"),
        *columns.stamps(),
        checks={
            "capacity_non_negative": "capacity >= 0",
            "members_non_negative": "members >= 0",
            "version_non_negative": "version >= 0",
        },
        indexed=["event_id"],
    )
    columns.table(
        "breakout_rooms",
        columns.key(),
        columns.key("session_id"),
        columns.key("event_id"),
        columns.label(),
        columns.number("capacity"),
        columns.state(),
        *columns.stamps(),
        columns.moment("closed_at", nullable=True),
        checks={"status": "status IN ('open', 'closed')", "capacity_non_negative": "capacity >= 0"},
        references={"event_id": "events", "session_id": "sessions"},
        indexed=["event_id", "session_id"],
    )
    columns.table(
        "huddle_members",
        columns.key("huddle_id"),
        columns.subject("user_id"),
        columns.moment("joined_at"),
        references={"huddle_id": "huddles"},
        key=("huddle_id", "user_id"),
        indexed=["user_id"],
    )


def downgrade() -> None:
    columns.drop_table("huddle_members", "user_id")
    columns.drop_table("breakout_rooms", "session_id", "event_id")
    columns.drop_table("huddles", "event_id")
    columns.drop_table("booths", "event_id")
