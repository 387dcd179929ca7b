"""What every organizer's change request shares: the PATCH rule, declared on the model,
and how a create request becomes a row.

A PATCH body names only the fields it changes. A field that is absent is left alone; a
field sent as `null` clears it, which only makes sense for fields that may be empty.
Each patch model declares those in `NULLABLE` (and what a cleared field stores, where
that is not NULL, in `CLEARED`); `null` for any other field is refused as invalid input
(422) before anything is read, instead of each service function keeping its own list or
silently dropping the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator

from headcount.domain.ids import new_id
from headcount.ledger import rows
from headcount.ledger.models import Base

R = TypeVar("R", bound=Base)


def _publish_nullability(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """OpenAPI shows `null` only where the model accepts it.

    Patch fields are typed `X | None` so that "absent" has a value; without this, the
    document would advertise `null` for every field and contract tests would send it.
    """
    nullable: frozenset[str] = getattr(model, "NULLABLE", frozenset())
    for name, prop in schema.get("properties", {}).items():
        options = prop.get("anyOf")
        if name in nullable or not isinstance(options, list):
            continue
        kept = [option for option in options if option.get("type") != "null"]
        if len(kept) == 1:
            del prop["anyOf"]
            prop.update(kept[0])
        else:
            prop["anyOf"] = kept
        if prop.get("default", ...) is None:
            del prop["default"]


class Patch(BaseModel):
    """Base of every PATCH body; subclasses declare `NULLABLE` and optionally `CLEARED`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_publish_nullability)

    NULLABLE: ClassVar[frozenset[str]] = frozenset()
    # Nullable fields whose cleared value is stored as something else (text becomes "").
    CLEARED: ClassVar[dict[str, Any]] = {}

    @model_validator(mode="after")
    def _null_only_where_declared(self) -> Patch:
        for name in sorted(self.model_fields_set):
            if getattr(self, name) is None and name not in self.NULLABLE:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, with cleared fields mapped to what is stored."""
        sent = self.model_dump(exclude_unset=True)
        return {
            name: self.CLEARED.get(name) if value is None and name in self.CLEARED else value
            for name, value in sent.items()
        }


def new_row(
    model: type[R],
    draft: BaseModel,
    now: datetime,
    chosen_id: str | None,
    prefix: str,
    **values: Any,
) -> R:
    """The row a create request makes: under the id the caller chose (an import, the demo)
    or a new one with the kind's `prefix`, holding the draft's fields the row has a column
    for and what the service decided (`values` win), created and updated `now`."""
    return rows.new(model, draft.model_dump(), now, id=chosen_id or new_id(prefix), **values)
