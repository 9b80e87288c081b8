"""What the OpenAPI document teaches beyond the routes: the introduction, a tag for every
route, and the requests chathooks sends (OpenAPI 3.1 ``webhooks``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Response

from chathooks.payload_models import BundlePayload, MessagePayload
from chathooks.states import Aggregation

DESCRIPTION = """
Forwards every WhatsApp message of a team to outbound webhooks: one POST per message, or
one bundle per chat per period.

**Authentication.** `Authorization: Bearer <token>`. The operator's admin token (printed
by the first `chathooks serve`) creates workspaces; each workspace's API token (in that
answer) does everything else, inside its workspace only.

**Errors** are JSON `{"detail": ...}`. A 422 lists each bad field with its `loc` (for a
batch: the item's index and field); a refused request changes nothing stored.

**What your endpoint receives** is under *Webhooks* below: the two bodies, the signature
headers, and what each answer means.
"""

TAGS: list[tuple[str, str, str]] = [
    (
        "/api/v1/workspaces",
        "workspaces",
        "Teams. Creating one takes the admin token; a workspace's token can replace itself.",
    ),
    ("/api/v1/teammates", "teammates", "The people of a workspace; they log in to the pages."),
    (
        "/api/v1/whatsapp-accounts",
        "WhatsApp accounts",
        "The connected numbers whose messages are forwarded.",
    ),
    (
        "/api/v1/messages",
        "messages",
        "Message events in: stored, then queued for every enabled webhook.",
    ),
    ("/api/v1/chats", "chats", "Chats, created by their first message event."),
    (
        "/api/v1/outgoing",
        "sending",
        "Answer on WhatsApp: a text to a chat or a phone number, sent through the account's "
        "source (WAHA, Evolution API, Cloud API), in order per chat and retried; it comes back "
        "to your webhooks as a `sent` message, once.",
    ),
    (
        "/api/v1/outbound-webhooks",
        "outbound webhooks",
        "Where messages go: settings, status, activity, the request log, test, flush, replay.",
    ),
    (
        "/api/v1/sources",
        "WhatsApp sources",
        "Connections that push a number's messages in: Cloud API, WAHA, Evolution API.",
    ),
    ("/in", "inbound", "Where WhatsApp senders deliver their webhooks (no bearer token)."),
    (
        "/healthz",
        "operations",
        "Health, readiness and Prometheus metrics, for load balancers and monitoring "
        "(no bearer token).",
    ),
]


def _tag_of(path: str) -> str | None:
    if path == "/api/v1/workspace/api-token":  # the caller's own workspace
        path = "/api/v1/workspaces"
    for prefix, tag, _ in TAGS:
        if path == prefix or path.startswith(prefix + "/"):
            return tag
    return None


def tag_operations(paths: dict[str, dict[str, Any]]) -> None:
    """Every operation without a tag gets its resource's, so /docs groups them."""
    for path, operations in paths.items():
        tag = _tag_of(path)
        for operation in operations.values():
            if tag and not operation.get("tags"):
                operation["tags"] = [tag]


def _signature_headers(
    webhook_id: Annotated[
        str,
        Header(
            description="The delivery's id (`msg_…`): the same on every retry of one "
            "delivery, so de-duplicate on it.",
            examples=["msg_2b4cd2f1a7e94b7c9d1f0e3a5b6c7d8e"],
        ),
    ],
    webhook_timestamp: Annotated[
        str, Header(description="Unix seconds when this attempt was signed.")
    ],
    webhook_signature: Annotated[
        str,
        Header(
            description="`v1,<base64 HMAC-SHA256 of '{webhook-id}.{webhook-timestamp}.{body}'>`"
            " with the webhook's secret (Standard Webhooks); there may be several, "
            "space-separated. Verify it before trusting the body.",
        ),
    ],
) -> None:
    """Documents the Standard Webhooks headers of every request chathooks sends."""


ANSWERS: dict[int | str, dict[str, str]] = {
    200: {"description": "Any 2xx within 15 s (5 s to connect): delivered."},
    410: {
        "description": "Gone: the URL is retired. The webhook is disabled at once and the "
        "workspace owner is e-mailed."
    },
    429: {"description": "Retried later, honouring `Retry-After` (up to 24 h); so is 503."},
    "default": {
        "description": "Anything else (another status, a redirect, a timeout, no connection) "
        "is a failed attempt: retried after 10 s, doubling up to 1 h. After more than 10 "
        "failed attempts in a row the webhook is auto-disabled and the owner e-mailed."
    },
}

outgoing = APIRouter(
    dependencies=[Depends(_signature_headers)], responses=ANSWERS, default_response_class=Response
)


@outgoing.post("message", summary="A message (aggregation none)")
def one_message(payload: MessagePayload) -> None:
    """A webhook with `"aggregation": "none"` receives one request per message, as soon as
    chathooks has stored it. Each chat's messages arrive one at a time, in order."""


_PERIODS = [period.value for period in Aggregation if period is not Aggregation.NONE]


@outgoing.post(
    "bundle", summary=f"A bundle (aggregation {', '.join(_PERIODS[:-1])} or {_PERIODS[-1]})"
)
def one_bundle(payload: BundlePayload) -> None:
    """A webhook with a period for `aggregation` (such as `"1h"`) receives one request per
    chat per period, when the period ends. Periods are aligned to UTC."""


def describe(app: FastAPI) -> None:
    app.description = DESCRIPTION
    app.openapi_tags = [{"name": tag, "description": text} for _, tag, text in TAGS]
    app.webhooks.include_router(outgoing)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        tag_operations(schema["paths"])
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point
