"""/ticket-types: the stock on sale."""

from __future__ import annotations

from fastapi import APIRouter

from headcount.api.rest.routes import event_resource
from headcount.capacity import tickets

router = APIRouter(tags=["tickets"])
event_resource(router, "ticket type", tickets, update_refusals=(401, 403, 404, 409))
