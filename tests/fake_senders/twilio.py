"""Twilio's REST API (2010-04-01) as its documentation answers: HTTP Basic with the
Account SID and the Auth Token, a Message resource (``sid`` SM…) for a send, the Account
resource, and Twilio's error ``{code, message, more_info, status}``.

``status_callback`` is the form Twilio posts to a message's status callback URL.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any
from urllib.parse import parse_qs

from tests.fake_senders.server import Called, FakeServer


class FakeTwilio(FakeServer):
    def __init__(self, account_sid: str, auth_token: str, sender: str) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.sender = sender
        self.state = "active"
        self._ids = (f"SM{n:032x}" for n in itertools.count(0x5EED))

    def answer(self, called: Called) -> tuple[int, Any]:
        pair = f"{self.account_sid}:{self.auth_token}".encode()
        if called.headers.get("authorization") != "Basic " + base64.b64encode(pair).decode():
            return error(401, 20003, "Authenticate")
        root = f"/2010-04-01/Accounts/{self.account_sid}"
        if called.method == "GET" and called.path == root + ".json":
            return 200, {
                "sid": self.account_sid,
                "friendly_name": "Acme Sales",
                "status": self.state,
                "type": "Full",
                "auth_token": self.auth_token,
                "uri": root + ".json",
            }
        if called.method == "POST" and called.path == root + "/Messages.json":
            return self._send({k: v[0] for k, v in parse_qs(called.body).items()})
        return error(404, 20404, f"The requested resource {called.path} was not found")

    def _send(self, form: dict[str, str]) -> tuple[int, Any]:
        if not form.get("To"):
            return error(400, 21604, "A 'To' phone number is required.")
        sender = form.get("From") or form.get("MessagingServiceSid")
        if sender != self.sender:
            return error(
                400, 63007, "Twilio could not find a Channel with the specified From address"
            )
        sid = next(self._ids)
        return 201, {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form.get("Body", ""),
            "date_created": "Thu, 03 Dec 2026 16:00:00 +0000",
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "sid": sid,
            "status": "queued",
            "to": form["To"],
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }


def error(status: int, code: int, message: str) -> tuple[int, Any]:
    return status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def status_callback(message_sid: str, status: str, error_code: str = "") -> dict[str, str]:
    """A status callback for a WhatsApp message sent through the API."""
    fields = {
        "ChannelPrefix": "whatsapp",
        "ApiVersion": "2010-04-01",
        "MessageStatus": status,
        "SmsSid": message_sid,
        "SmsStatus": status,
        "To": "whatsapp:+5511987654321",
        "From": "whatsapp:+14155238886",
        "MessageSid": message_sid,
        "AccountSid": "AC0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    }
    if error_code:
        fields["ErrorCode"] = error_code
    return fields
