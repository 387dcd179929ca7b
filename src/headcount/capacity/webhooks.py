"""Webhook endpoints and their delivery logs, managed by organizers (docs/webhooks.md).

Rules chosen here:
* An organizer's endpoint receives their events: all of them (including events created
  later), or only the `event_ids` they list, each of which they must organize. The
  platform `service` may manage every endpoint, scope one to any organizer
  (`organizer_id`) or any events, or leave both out to receive every event.
* The secret is generated here (`whsec_…`) and shown once, in the answer to the create
  or rotate request; reads never show it. A rotated-out secret keeps signing beside the
  new one for `ROTATION_OVERLAP`, so receivers can switch without losing a message.
* A URL is checked when it is set: https only, and the host must not be or resolve to a
  non-public address, unless HEADCOUNT_WEBHOOK_ALLOW_PRIVATE=1. The relay checks again
  on every connection (outbound.py).
* Disabling keeps fanning out (nothing is lost while an endpoint is off); re-enabling
  sends the backlog, each delivery with a fresh retry window.
"""

from __future__ import annotations

import json
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from headcount import outbound
from headcount.capacity.inputs import Patch
from headcount.capacity.views import WebhookDeliveryView, WebhookView, WebhookWithSecretView
from headcount.domain import webhooks as rules
from headcount.domain.changes import encode_cursor
from headcount.domain.errors import Forbidden, InvalidRequest, NotFound, WebhookUrlRefused
from headcount.domain.identity import Principal
from headcount.domain.ids import is_well_formed, new_id
from headcount.ledger import rows
from headcount.ledger import webhooks as ledger
from headcount.ledger.db import Tx
from headcount.ledger.webhooks import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from headcount.runtime import Runtime

MAX_LISTED = 200


def _check_types(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    return rules.check_type_filters(value)


def _check_events(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if not value:
        raise ValueError("list at least one event, or leave event_ids out for every event")
    for event_id in value:
        if not is_well_formed(event_id):
            raise ValueError(f"{event_id!r} is not an event id")
    return sorted(set(value))


class WebhookDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=rules.MAX_URL_LENGTH)
    description: str = Field(default="", max_length=500)
    event_ids: list[str] | None = Field(
        default=None,
        max_length=rules.MAX_EVENT_IDS,
        description="only these events (each must be yours); leave out for all your events",
    )
    types: list[str] = Field(
        default_factory=list,
        max_length=rules.MAX_TYPE_FILTERS,
        description="change types (`order.created`) or prefixes (`order.*`); empty: all",
    )
    organizer_id: str | None = Field(
        default=None,
        max_length=200,
        description="service only: whose events; leave out (with no event_ids) for every event",
    )
    enabled: bool = True

    checked_types = field_validator("types")(_check_types)
    checked_events = field_validator("event_ids")(_check_events)


class WebhookPatch(Patch):
    """Only the fields present change; `event_ids: null` widens to every event in scope."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset({"event_ids"})

    url: str | None = Field(default=None, min_length=1, max_length=rules.MAX_URL_LENGTH)
    description: str | None = Field(default=None, max_length=500)
    event_ids: list[str] | None = Field(default=None, max_length=rules.MAX_EVENT_IDS)
    types: list[str] | None = Field(default=None, max_length=rules.MAX_TYPE_FILTERS)
    enabled: bool | None = None

    checked_types = field_validator("types")(_check_types)
    checked_events = field_validator("event_ids")(_check_events)


def view(endpoint: WebhookEndpoint, pending: int) -> WebhookView:
    return WebhookView.from_row(endpoint, types=list(endpoint.types), pending_deliveries=pending)


def delivery_view(delivery: WebhookDelivery) -> WebhookDeliveryView:
    pending = delivery.status == DeliveryStatus.PENDING
    return WebhookDeliveryView.from_row(
        delivery,
        cursor=encode_cursor(delivery.position),
        next_attempt_at=delivery.next_attempt_at if pending else None,
        body=json.loads(delivery.body),
    )


def _require_webhook_manager(principal: Principal) -> None:
    if not (principal.is_organizer or principal.is_service):
        raise Forbidden("only organizers and the platform service manage webhooks")


def _require_owner(principal: Principal, endpoint: WebhookEndpoint) -> None:
    if principal.is_service:
        return
    if not (principal.is_organizer and endpoint.organizer_id == principal.sub):
        raise Forbidden("only the endpoint's organizer may do this")


async def _checked_url(rt: Runtime, url: str) -> str:
    """The URL, or a refusal: syntax first, then where its host resolves to."""
    allow = rt.settings.webhook_allow_private
    try:
        _, host, port = rules.check_url(url, allow_private=allow)
    except rules.UrlRefused as exc:
        raise WebhookUrlRefused(str(exc), url=url) from exc
    except ValueError as exc:
        raise InvalidRequest(f"url: {exc}") from exc
    try:
        await outbound.check_destination(host, port, allow_private=allow)
    except outbound.DestinationRefused as exc:
        raise WebhookUrlRefused(str(exc), url=url) from exc
    return url


async def _checked_events(
    tx: Tx, principal: Principal, organizer_id: str | None, ids: list[str]
) -> None:
    organizers = await ledger.organizers_of(tx, ids)
    for event_id in ids:
        owner = organizers.get(event_id)
        if owner is None:
            raise NotFound(f"no event {event_id!r}")
        if not principal.is_service and owner != principal.sub:
            raise Forbidden(f"event {event_id} is not yours")
        if organizer_id is not None and owner != organizer_id:
            raise InvalidRequest(f"event {event_id} is not an event of {organizer_id}")


async def _load(tx: Tx, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await rows.find(tx, WebhookEndpoint, endpoint_id, noun="webhook")
    _require_owner(principal, endpoint)
    return endpoint


async def _view(tx: Tx, endpoint: WebhookEndpoint) -> WebhookView:
    pending = await ledger.pending_count(tx, [endpoint.id])
    return view(endpoint, pending.get(endpoint.id, 0))


async def create_webhook(
    rt: Runtime, principal: Principal, draft: WebhookDraft
) -> WebhookWithSecretView:
    _require_webhook_manager(principal)
    if principal.is_organizer and draft.organizer_id not in (None, principal.sub):
        raise Forbidden("organizers register webhooks for their own events")
    organizer_id = principal.sub if principal.is_organizer else draft.organizer_id
    url = await _checked_url(rt, draft.url)
    now = rt.clock()
    secret = rules.new_secret()
    async with rt.db.transaction() as tx:
        if draft.event_ids is not None:
            await _checked_events(tx, principal, organizer_id, draft.event_ids)
        endpoint = WebhookEndpoint(
            id=new_id("whk"),
            organizer_id=organizer_id,
            event_ids=draft.event_ids,
            types=draft.types,
            url=url,
            description=draft.description,
            secret=secret,
            previous_secret=None,
            previous_secret_until=None,
            enabled=draft.enabled,
            disabled_reason=None if draft.enabled else "created disabled",
            disabled_at=None if draft.enabled else now,
            failing_since=None,
            failures_in_a_row=0,
            last_success_at=None,
            created_by=principal.sub,
            created_at=now,
            updated_at=now,
        )
        await ledger.add_endpoint(tx, endpoint)
        shown = view(endpoint, 0)
    return WebhookWithSecretView(**shown.model_dump(), secret=secret)


async def list_webhooks(rt: Runtime, principal: Principal) -> list[WebhookView]:
    """Yours, newest first; the service sees every endpoint."""
    _require_webhook_manager(principal)
    async with rt.db.snapshot() as tx:
        found = await ledger.endpoints(
            tx, organizer_id=None if principal.is_service else principal.sub, limit=MAX_LISTED
        )
        pending = await ledger.pending_count(tx, [e.id for e in found])
        return [view(e, pending.get(e.id, 0)) for e in found]


async def get_webhook(rt: Runtime, principal: Principal, endpoint_id: str) -> WebhookView:
    _require_webhook_manager(principal)
    async with rt.db.snapshot() as tx:
        return await _view(tx, await _load(tx, principal, endpoint_id))


async def update_webhook(
    rt: Runtime, principal: Principal, endpoint_id: str, patch: WebhookPatch
) -> WebhookView:
    _require_webhook_manager(principal)
    changes = patch.changes()
    if "url" in changes:
        changes["url"] = await _checked_url(rt, changes["url"])
    now = rt.clock()
    async with rt.db.transaction() as tx:
        endpoint = await _load(tx, principal, endpoint_id)
        if changes.get("event_ids") is not None:
            await _checked_events(tx, principal, endpoint.organizer_id, changes["event_ids"])
        enabling = changes.get("enabled") is True and not endpoint.enabled
        if changes.get("enabled") is False and endpoint.enabled:
            changes.update(disabled_reason=f"disabled by {principal.sub}", disabled_at=now)
        if enabling:
            changes.update(
                disabled_reason=None, disabled_at=None, failing_since=None, failures_in_a_row=0
            )
            await ledger.resume(tx, endpoint.id, now)
        await rows.change(
            tx, WebhookEndpoint, endpoint.id, {**changes, "updated_at": now}, event_id=None
        )
        return await _view(tx, await _load(tx, principal, endpoint_id))


async def rotate_secret(
    rt: Runtime, principal: Principal, endpoint_id: str
) -> WebhookWithSecretView:
    """A new secret, shown once; the old one keeps signing beside it for a while."""
    _require_webhook_manager(principal)
    now = rt.clock()
    secret = rules.new_secret()
    async with rt.db.transaction() as tx:
        endpoint = await _load(tx, principal, endpoint_id)
        await rows.change(
            tx,
            WebhookEndpoint,
            endpoint.id,
            {
                "secret": secret,
                "previous_secret": endpoint.secret,
                "previous_secret_until": now + rules.ROTATION_OVERLAP,
                "updated_at": now,
            },
            event_id=None,  # a reference table (ledger/distribution.py)
        )
        shown = await _view(tx, await _load(tx, principal, endpoint_id))
    return WebhookWithSecretView(**shown.model_dump(), secret=secret)


async def delete_webhook(rt: Runtime, principal: Principal, endpoint_id: str) -> None:
    """The endpoint and its delivery log; pending deliveries are dropped with it."""
    _require_webhook_manager(principal)
    async with rt.db.transaction() as tx:
        endpoint = await _load(tx, principal, endpoint_id)
        await ledger.delete_endpoint(tx, endpoint.id)


async def list_deliveries(
    rt: Runtime,
    principal: Principal,
    endpoint_id: str,
    *,
    status: DeliveryStatus | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[WebhookDeliveryView]:
    """Newest first; page on with `before` = the last one's cursor."""
    _require_webhook_manager(principal)
    async with rt.db.snapshot() as tx:
        endpoint = await _load(tx, principal, endpoint_id)
        found = await ledger.deliveries(
            tx,
            endpoint.id,
            status=None if status is None else status.value,
            before=before,
            limit=min(max(limit, 1), MAX_LISTED),
        )
        return [delivery_view(d) for d in found]


async def redeliver(
    rt: Runtime, principal: Principal, endpoint_id: str, delivery_id: str
) -> WebhookDeliveryView:
    """Send a delivery again, delivered or not, with the same `webhook-id`."""
    _require_webhook_manager(principal)
    now = rt.clock()
    async with rt.db.transaction() as tx:
        endpoint = await _load(tx, principal, endpoint_id)
        delivery = await rows.find(tx, WebhookDelivery, delivery_id, noun="delivery")
        if delivery.endpoint_id != endpoint.id:
            raise NotFound(f"no delivery {delivery_id!r}")
        await ledger.redeliver(tx, delivery.id, now)
        return delivery_view(await rows.find(tx, WebhookDelivery, delivery_id, noun="delivery"))
