"""/areas: the door — areas and their occupancy, scans, offline batches, corrections."""

from __future__ import annotations

from fastapi import APIRouter

from headcount.api.rest.routes import Call, call_routes, event_resource
from headcount.capacity import areas, scans

router = APIRouter(tags=["areas"])


# The area resource's routes by verb, the others by name.
DOCS = {
    "create": "A venue, or (with `parent_id`) a hall or room inside another area.",
    "update": "A maximum lowered below the people inside evicts nobody; entries wait for room.",
    "scan": """An `entry` or `exit` at the area's gate. 409 `area_full` or `already_inside`
    refuse an entry and change nothing; bad credentials get `malformed_credential`,
    `unknown_credential`, `credential_other_event` or `ticket_released`. A retried
    `scan_id` answers as the first time (`duplicate: true`).""",
    "scan_batch": """An offline gate's scans, applied in scan-time order: each is `accepted`,
    `duplicate`, `conflicted` (stored: flagged past the maximum, or moved nobody) or
    `rejected` (a bad credential: not stored).""",
    "force_exit": "The organizer checks one credential out of the area (a recorded correction).",
    "reset_area": "Check everyone out of the area and the areas inside it (the nightly reset).",
}
event_resource(router, "area", areas, docs=DOCS)

AREA = "/areas/{area_id}"
CALLS = [
    Call(f"POST {AREA}/scans", scans.scan, (401, 403, 404, 409)),
    Call("POST /events/{event_id}/scans/batch", scans.scan_batch, (401, 403, 404)),
    Call(f"POST {AREA}/checkout", scans.force_exit, (401, 403, 404, 409)),
    Call(f"POST {AREA}/reset", scans.reset_area, (401, 403, 404)),
]
call_routes(router, CALLS, DOCS)
