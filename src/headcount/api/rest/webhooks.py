"""/webhooks: endpoints that receive an organizer's changes, and their delivery logs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import id_path, problems
from headcount.capacity import webhooks
from headcount.capacity.views import WebhookDeliveryView, WebhookView, WebhookWithSecretView
from headcount.capacity.webhooks import WebhookDraft, WebhookPatch
from headcount.domain.changes import BadCursor, decode_cursor
from headcount.domain.errors import InvalidRequest
from headcount.ledger.webhooks import DeliveryStatus

router = APIRouter(tags=["webhooks"])
WebhookId = Annotated[str, id_path("webhook")]
DeliveryId = Annotated[str, id_path("delivery")]


@router.post("/webhooks", status_code=201, responses=problems(401, 403, 404))
async def create_webhook(
    rt: RuntimeDep, who: PrincipalDep, body: WebhookDraft
) -> WebhookWithSecretView:
    """The answer holds the signing secret; it is never shown again (rotate for a new one)."""
    return await webhooks.create_webhook(rt, who, body)


@router.get("/webhooks", responses=problems(401, 403))
async def list_webhooks(rt: RuntimeDep, who: PrincipalDep) -> list[WebhookView]:
    return await webhooks.list_webhooks(rt, who)


@router.get("/webhooks/{webhook_id}", responses=problems(401, 403, 404))
async def get_webhook(rt: RuntimeDep, who: PrincipalDep, webhook_id: WebhookId) -> WebhookView:
    return await webhooks.get_webhook(rt, who, webhook_id)


@router.patch("/webhooks/{webhook_id}", responses=problems(401, 403, 404))
async def update_webhook(
    rt: RuntimeDep, who: PrincipalDep, webhook_id: WebhookId, body: WebhookPatch
) -> WebhookView:
    """`enabled: true` re-enables a disabled endpoint; its pending deliveries resume."""
    return await webhooks.update_webhook(rt, who, webhook_id, body)


@router.delete("/webhooks/{webhook_id}", status_code=204, responses=problems(401, 403, 404))
async def delete_webhook(rt: RuntimeDep, who: PrincipalDep, webhook_id: WebhookId) -> Response:
    await webhooks.delete_webhook(rt, who, webhook_id)
    return Response(status_code=204)


@router.post("/webhooks/{webhook_id}/rotate-secret", responses=problems(401, 403, 404))
async def rotate_secret(
    rt: RuntimeDep, who: PrincipalDep, webhook_id: WebhookId
) -> WebhookWithSecretView:
    """A new secret, shown once; the previous one also signs for 24 hours."""
    return await webhooks.rotate_secret(rt, who, webhook_id)


@router.get("/webhooks/{webhook_id}/deliveries", responses=problems(401, 403, 404))
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


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    responses=problems(401, 403, 404),
)
async def redeliver(
    rt: RuntimeDep, who: PrincipalDep, webhook_id: WebhookId, delivery_id: DeliveryId
) -> WebhookDeliveryView:
    """Send it again with the same `webhook-id`, whatever its status."""
    return await webhooks.redeliver(rt, who, webhook_id, delivery_id)
