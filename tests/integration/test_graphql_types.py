"""GraphQL types are generated from the views and the errors, so neither can drift.

A throwaway view stands in for a new one: whatever a view declares (nested views, lists,
optionals, enums, datetimes, untyped dicts, ids, descriptions, computed fields) reaches
GraphQL unedited.
"""

from __future__ import annotations

import ast
import enum
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import strawberry
from pydantic import BaseModel, Field, computed_field
from strawberry.types.base import get_object_definition

import headcount
from headcount.api.graphql.generate import object_type, type_of
from headcount.api.graphql.refusals import (
    TYPES,
    Refused,
    refusal_for,
    refusals_in,
    result_union,
)
from headcount.capacity.views import HuddleView
from headcount.domain import errors


class Colour(enum.Enum):
    RED = "red"


strawberry.enum(Colour, name="TestColour")


class PartView(BaseModel):
    """A part; `part_no` is its number."""

    part_no: int


class WidgetView(BaseModel):
    id: str
    owner_id: str
    kit_ids: list[str]
    made_at: datetime
    colour: Colour
    parts: list[PartView]
    spare: PartView | None
    extras: dict[str, Any]
    weight_kg: float = Field(description="Its `weight_kg` on the scale.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def part_ids(self) -> list[str]:
        return [f"part_{p.part_no}" for p in self.parts]


WIDGET_SDL = '''type Widget {
  id: ID!
  ownerId: String!
  kitIds: [ID!]!
  madeAt: DateTime!
  colour: TestColour!
  parts: [Part!]!
  spare: Part
  extras: JSON!

  """Its `weightKg` on the scale."""
  weightKg: Float!
  partIds: [ID!]!
}'''


def test_a_view_becomes_a_type_with_every_field_and_resolves_as_itself() -> None:
    widget = WidgetView(
        id="wid_1",
        owner_id="ann",
        kit_ids=["kit_1"],
        made_at=datetime(2030, 1, 1, tzinfo=UTC),
        colour=Colour.RED,
        parts=[PartView(part_no=7)],
        spare=None,
        extras={"any": [1, "two"]},
        weight_kg=1.5,
    )

    def resolve() -> WidgetView:
        return widget

    @strawberry.type
    class Query:
        widget: WidgetView = strawberry.field(resolver=resolve, graphql_type=type_of(WidgetView))

    schema = strawberry.Schema(query=Query)
    sdl = schema.as_str()
    assert WIDGET_SDL in sdl
    assert '"""A part; `partNo` is its number."""\ntype Part {' in sdl
    answer = schema.execute_sync(
        "{ widget { id ownerId kitIds madeAt colour parts { partNo } spare { partNo } extras "
        "weightKg partIds } }"
    )
    assert answer.errors is None
    assert answer.data == {
        "widget": {
            "id": "wid_1",
            "ownerId": "ann",
            "kitIds": ["kit_1"],
            "madeAt": "2030-01-01T00:00:00+00:00",
            "colour": "RED",
            "parts": [{"partNo": 7}],
            "spare": None,
            "extras": {"any": [1, "two"]},
            "weightKg": 1.5,
            "partIds": ["part_7"],
        }
    }


def test_a_type_declared_after_its_views_first_use_is_refused() -> None:
    class GadgetView(BaseModel):
        name: str

    type_of(GadgetView)
    with pytest.raises(TypeError, match="already has a GraphQL type"):

        @object_type(GadgetView, name="Gadget")
        class Gadget:
            pass


def test_refusal_types_are_built_from_the_errors() -> None:
    for error, kind in TYPES.items():
        names = [f.python_name for f in get_object_definition(kind, strict=True).fields]
        assert names == ["code", "title", "detail", *errors.members_of(error)], error
        assert kind.__name__ == error.__name__


def test_a_refusal_carries_what_its_error_carries() -> None:
    allowed = refusals_in(result_union("TestHuddleResult", HuddleView, errors.HuddleFull))
    full = refusal_for(errors.HuddleFull("full", huddle_id="hud_1", capacity=2), allowed)
    assert type(full) is TYPES[errors.HuddleFull]
    assert vars(full) == {
        "code": "huddle_full",
        "title": "The huddle is full",
        "detail": "full",
        "huddle_full": True,  # declared with a default: always sent
        "huddle_id": "hud_1",
        "capacity": 2,
        "members": None,
    }
    sold = refusal_for(errors.SoldOut("gone", ticket_type_id="tt_1"), allowed)
    assert type(sold) is Refused, "a refusal the union does not list is the catch-all"
    assert (sold.code, sold.detail) == ("sold_out", "gone")


def test_every_member_a_raise_passes_is_declared() -> None:
    """A keyword a raise passes but its error does not declare would reach REST only."""
    undeclared = []
    for path in Path(headcount.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            if isinstance(node.func, ast.Name):
                name = node.func.id
            elif isinstance(node.func, ast.Attribute) and ast.unparse(node.func.value) == "errors":
                name = node.func.attr
            else:
                continue
            error = getattr(errors, name, None)
            if not (isinstance(error, type) and issubclass(error, errors.HeadcountError)):
                continue
            declared = errors.members_of(error)
            undeclared += [
                f"{path.name}:{node.lineno} {name}({keyword.arg}=...)"
                for keyword in node.keywords
                if keyword.arg is not None and keyword.arg not in declared
            ]
    assert undeclared == [], "declare these members on the errors in domain/errors.py"
