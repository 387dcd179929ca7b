"""Ledger tables for the places people gather: expo booths, breakout rooms and huddles.

Booths and breakout rooms are *durable definitions* (name, limit, open/closed); who is
inside them right now is live presence (leases), not rows. Huddles are durable
membership: `members` counts the `huddle_members` rows of the huddle and changes in the
same transaction, guarded by the `version` column (optimistic locking, see
capacity/huddles.py); reconcile proves the counter equals the rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from headcount.ledger.models import Base


class Booth(Base):
    __tablename__ = "booths"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    tier: Mapped[str] = mapped_column(String(40))
    chat_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    video_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    max_visitors: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("max_visitors IS NULL OR max_visitors >= 0", name="max_visitors"),
    )


class BreakoutRoom(Base):
    __tablename__ = "breakout_rooms"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    # Denormalised from the session so the event's capacity snapshot is one indexed read.
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    capacity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("capacity >= 0", name="capacity_non_negative"),
        CheckConstraint("status IN ('open', 'closed')", name="status"),
    )


class Huddle(Base):
    __tablename__ = "huddles"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    topic: Mapped[str] = mapped_column(Text, default="")
    capacity: Mapped[int] = mapped_column(Integer)
    members: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("capacity >= 0", name="capacity_non_negative"),
        # Not `members <= capacity`: lowering the capacity keeps everyone who is in.
        CheckConstraint("members >= 0", name="members_non_negative"),
        CheckConstraint("version >= 0", name="version_non_negative"),
    )


class HuddleMember(Base):
    __tablename__ = "huddle_members"

    huddle_id: Mapped[str] = mapped_column(ForeignKey("huddles.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)
    joined_at: Mapped[datetime]
