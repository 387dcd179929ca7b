"""/webhooks: endpoints that receive an organizer's changes, and their delivery logs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import id_path, problems
from headcount.api.rest.routes import Call, call_routes
from headcount.capacity import webhooks
from headcount.capacity.views import WebhookDeliveryView
from headcount.domain.changes import BadCursor, decode_cursor
from headcount.domain.errors import InvalidRequest
from headcount.ledger.webhooks import DeliveryStatus

router = APIRouter(tags=["webhooks"])
WebhookId = Annotated[str, id_path("webhook")]


DOCS = {
    "create_webhook": """
    The answer holds the signing secret; it is never shown again (rotate for a new one).""",
    "update_webhook": """
    `enabled: true` re-enables a disabled endpoint; its pending deliveries resume.""",
    "rotate_secret": "A new secret, shown once; the previous one also signs for 24 hours.",
    "redeliver": "Send it again with the same `webhook-id`, whatever its status.",
}
WEBHOOK = "/webhooks/{webhook_id}"
CALLS = [
    Call("POST /webhooks", webhooks.create_webhook, (401, 403, 404), created=True),
    Call("GET /webhooks", webhooks.list_webhooks, (401, 403)),
    Call(f"GET {WEBHOOK}", webhooks.get_webhook, (401, 403, 404)),
    Call(f"PATCH {WEBHOOK}", webhooks.update_webhook, (401, 403, 404)),
    Call(f"DELETE {WEBHOOK}", webhooks.delete_webhook, (401, 403, 404)),
    Call(f"POST {WEBHOOK}/rotate-secret", webhooks.rotate_secret, (401, 403, 404)),
]
call_routes(router, CALLS, DOCS)


@router.get(f"{WEBHOOK}/deliveries", responses=problems(401, 403, 404))
async def list_deliveries(
    *,
    rt: RuntimeDep,
    who: PrincipalDep,
    webhook_id: WebhookId,
    status: DeliveryStatus | None = None,
    before: Annotated[
        str | None, Query(max_length=40, description="a delivery's `cursor`: older ones")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[WebhookDeliveryView]:
    """Newest first."""
    try:
        position = None if before is None else decode_cursor(before)
    except BadCursor as exc:
        raise InvalidRequest(f"before: {exc}") from exc
    return await webhooks.list_deliveries(
        rt, who, webhook_id, status=status, before=position, limit=limit
    )


DELIVERY = f"{WEBHOOK}/deliveries/{{delivery_id}}"
call_routes(router, [Call(f"POST {DELIVERY}/redeliver", webhooks.redeliver, (401, 403, 404))], DOCS)
