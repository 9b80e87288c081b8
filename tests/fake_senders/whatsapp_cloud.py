"""Meta's Graph API for WhatsApp (Cloud API) as its documentation answers: a send's
``{messaging_product, contacts, messages: [{id}]}``, the phone number's fields, and Meta's
error object ``{"error": {message, type, code, error_subcode?, error_data: {details},
fbtrace_id}}`` for a wrong token (190), an unknown number id (100/33), a missing permission
(10), the closed 24-hour window (131047) and the throughput limit (130429).

``failed_status`` is the ``statuses[]`` webhook Meta posts later for a send that failed.
"""

from __future__ import annotations

import itertools
from typing import Any

from tests.fake_senders.server import Called, FakeServer

VERSION = "v23.0"
DETAILS_131047 = (
    "Message failed to send because more than 24 hours have passed since the customer "
    "last replied to this number."
)


class FakeGraph(FakeServer):
    def __init__(self, phone_number_id: str, token: str) -> None:
        super().__init__()
        self.phone_number_id = phone_number_id
        self.token = token
        self.permitted = True
        self.quality = "GREEN"
        self.window_closed: set[str] = set()
        """Recipients who last wrote more than 24 hours ago: free text to them is refused."""
        self.throttled = 0
        """How many sends are refused next with the throughput limit."""
        self._ids = (f"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI{n:X}AA==" for n in itertools.count(1))

    def answer(self, called: Called) -> tuple[int, Any]:
        if called.headers.get("authorization") != f"Bearer {self.token}":
            return oauth(401, 190, "Invalid OAuth access token - Cannot parse access token")
        parts = called.path.strip("/").split("/")
        if parts[:2] != [VERSION, self.phone_number_id]:
            node = parts[1] if len(parts) > 1 else ""
            return oauth(
                400,
                100,
                f"Unsupported {called.method.lower()} request. Object with ID '{node}' does "
                "not exist, cannot be loaded due to missing permissions, or does not support "
                "this operation. Please read the Graph API documentation at "
                "https://developers.facebook.com/docs/graph-api",
                subcode=33,
                kind="GraphMethodException",
            )
        if not self.permitted:
            return oauth(403, 10, "(#10) Application does not have permission for this action")
        if called.method == "GET" and len(parts) == 2:
            return 200, {
                "display_phone_number": "+1 650-555-1111",
                "verified_name": "Acme Sales",
                "quality_rating": self.quality,
                "id": self.phone_number_id,
            }
        if called.method == "POST" and parts[2:] == ["messages"]:
            return self._send(called.json)
        return oauth(400, 100, "Unknown path components: /" + "/".join(parts[2:]))

    def _send(self, body: dict[str, Any]) -> tuple[int, Any]:
        to = str(body.get("to") or body.get("recipient") or "")
        if self.throttled:
            self.throttled -= 1
            details = "Cloud API message throughput has been reached."
            return oauth(400, 130429, "(#130429) Rate limit hit", details=details)
        if body.get("type") == "text" and to in self.window_closed:
            return oauth(400, 131047, "(#131047) Re-engagement message", details=DETAILS_131047)
        answer: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": next(self._ids)}],
        }
        if body.get("type") == "template":
            answer["messages"][0]["message_status"] = "accepted"
        return 200, answer


def oauth(
    status: int,
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    details: str = "",
    kind: str = "OAuthException",
) -> tuple[int, Any]:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = "AQm8Bq4xSM3yPZ0n1Yv6Xj2"
    return status, {"error": error}


def failed_status(message_id: str, recipient: str, code: int, title: str, details: str) -> Any:
    """The ``messages`` webhook Meta posts when a send it accepted fails later."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "16505551111",
                                "phone_number_id": "106540352242922",
                            },
                            "statuses": [
                                {
                                    "id": message_id,
                                    "status": "failed",
                                    "timestamp": "1764780000",
                                    "recipient_id": recipient,
                                    "errors": [
                                        {
                                            "code": code,
                                            "title": title,
                                            "message": title,
                                            "error_data": {"details": details},
                                            "href": "https://developers.facebook.com/docs/"
                                            "whatsapp/cloud-api/support/error-codes/",
                                        }
                                    ],
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def message_echo(message_id: str, business: str, to: str, body: str) -> Any:
    """The ``smb_message_echoes`` webhook (``message_echoes[]``, ``to`` with a ``+``) Meta
    posts, when the app subscribes to it, for a text the business number sent."""
    echo = {
        "from": business,
        "to": f"+{to}",
        "id": message_id,
        "timestamp": "1764780000",
        "type": "text",
        "text": {"body": body},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": business, "phone_number_id": "106540352242922"},
        "message_echoes": [echo],
    }
    change = {"value": value, "field": "smb_message_echoes"}
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [change]}],
    }
