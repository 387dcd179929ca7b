"""RFC 9457 problem responses: every refusal, one shape, one stable `code`.

Mapped here once for the whole app, so routers never build error bodies themselves.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from headcount.domain.errors import HeadcountError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:headcount:problem:"

_HTTP_CODES = {
    400: ("malformed_request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "The request body is too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("invalid_request", "The request is not valid"),
    429: ("rate_limited", "Too many requests"),
    503: ("service_unavailable", "A backing service is unavailable"),
}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if k not in body})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_for(exc: HeadcountError, instance: str | None = None) -> JSONResponse:
    headers = {"Retry-After": "1"} if exc.status in (429, 503) else None
    # An extra named like a standard member (e.g. Conflict(status="cancelled")) must not
    # collide with it: the standard member wins, as `problem` does for the body.
    extra = {k: v for k, v in exc.extra.items() if k not in _RESERVED}
    return problem(
        exc.status, exc.code, exc.title, exc.detail, instance=instance, headers=headers, **extra
    )


_RESERVED = frozenset({"type", "title", "status", "detail", "code", "instance", "headers"})


def _validation_code(errors: list[dict[str, Any]]) -> str:
    """Quantity mistakes get their own code; a body that is not JSON is malformed."""
    for err in errors:
        if err.get("type") == "json_invalid":
            return "malformed_request"
    for err in errors:
        if any(str(part).startswith("quantity") for part in err.get("loc", ())):
            return "invalid_quantity"
    return "invalid_request"


def _not_json_body(request: Request, errors: list[dict[str, Any]]) -> bool:
    """FastAPI leaves a non-JSON body unparsed and reports it missing or of the wrong type;
    the honest answer to a form, XML or text body is 415, not "field required"."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return False
    if not media and not int(request.headers.get("content-length") or 0):
        return False  # no body at all: let the missing fields speak for themselves
    return any(tuple(err.get("loc", ()))[:1] == ("body",) for err in errors)


def _jsonable_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "loc": [str(p) for p in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in errors[:20]
    ]


# The shape of every refusal, published in the OpenAPI document so clients can rely on it.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details; branch on `code`, never on `title` or `detail`.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Make the OpenAPI document tell the truth about errors.

    FastAPI documents validation errors as `application/json` `HTTPValidationError`, but
    every error here is a problem document; and some answers can come from any operation
    (a malformed body, the body limit, a bad token, the database being away). Contract
    tests (tests/e2e/test_contract_fuzz.py) hold the server to this document.
    """
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = operation["responses"]
            statuses = {"422"}
            if path.startswith("/api/") or path == "/readyz":
                statuses |= {"400", "503"}
            if operation.get("security"):
                statuses.add("401")
            if "requestBody" in operation:
                statuses |= {"413", "415"}
            for status in statuses:
                responses.setdefault(status, {})
            for status, response in responses.items():
                if status[0] in "45":
                    _code, title = _HTTP_CODES.get(int(status), ("error", "Request refused"))
                    response["description"] = response.get("description") or title
                    response["content"] = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}
    for unused in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(unused, None)
    return schema


def install(app: FastAPI) -> None:
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(build_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(HeadcountError)
    async def _refusal(request: Request, exc: HeadcountError) -> JSONResponse:
        return problem_for(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if _not_json_body(request, errors):
            return problem(
                415,
                "unsupported_media_type",
                "Unsupported media type",
                "send the body as JSON with Content-Type: application/json",
                instance=request.url.path,
            )
        code = _validation_code(errors)
        status = 400 if code == "malformed_request" else 422
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        detail = f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"
        titles = {
            "malformed_request": "The request body could not be parsed",
            "invalid_quantity": "Quantity not allowed",
        }
        return problem(
            status,
            code,
            titles.get(code, "The request is not valid"),
            detail,
            instance=request.url.path,
            errors=_jsonable_errors(errors),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, title = _HTTP_CODES.get(exc.status_code, ("error", "Request refused"))
        headers = dict(exc.headers) if exc.headers else None
        return problem(
            exc.status_code,
            code,
            title,
            str(exc.detail),
            instance=request.url.path,
            headers=headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500,
            "internal_error",
            "Internal error",
            "an unexpected error occurred; it has been logged",
            instance=request.url.path,
        )
