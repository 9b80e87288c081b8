"""What chathooks sends to a webhook (SPEC §3), as models: the OpenAPI's ``webhooks``
section and the tests' key-by-key checks both read them; ``payloads`` builds the bodies."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

ACCOUNT_PHONE = "+972500000000"
ChatId = Annotated[
    str, Field(description="chathooks' id of the chat: a string of digits.", examples=["1"])
]

PayloadTimestamp = Annotated[
    str,
    Field(
        pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$",
        description="UTC, always in this form.",
        examples=["2021-02-24T16:25:29+0000"],
    ),
]


class Outgoing(BaseModel):
    """A part of what chathooks sends: every field always present, unknown text as ``""``."""

    model_config = ConfigDict(extra="forbid")


class PayloadAccount(Outgoing):
    """The connected WhatsApp account, named after its owner."""

    full_name: str = Field(examples=["Amnon Haha"])
    email: str = Field(examples=["amnon@acme.com"])
    phone: str = Field(examples=[ACCOUNT_PHONE])


class PayloadChat(Outgoing):
    full_name: str = Field(examples=["John Doe"])
    responsible_name: str = Field(description="The responsible teammate; empty if none.")
    responsible_email: str = Field(description="The responsible teammate; empty if none.")
    chat_url: str = Field(
        description="The chat's page in chathooks.",
        examples=["http://127.0.0.1:8000/chat/1/messages/"],
    )
    chat_id: ChatId
    is_new_chat: bool = Field(
        description="true when this request holds the chat's first message that could be sent."
    )
    is_group: bool
    phone: str = Field(description="The contact's phone; empty for a group.")


class PayloadParty(Outgoing):
    full_name: str
    phone: str


class PayloadMessage(Outgoing):
    direction: Literal["sent", "received"]
    timestamp: PayloadTimestamp
    message_id: str = Field(description="The id the message event had: de-duplicate on it.")
    sender: PayloadParty
    recipient: PayloadParty
    text: str


PAYLOAD_ACCOUNT: dict[str, JsonValue] = {
    "full_name": "Amnon Haha",
    "email": "amnon@acme.com",
    "phone": ACCOUNT_PHONE,
}
PAYLOAD_CHAT: dict[str, JsonValue] = {
    "full_name": "John Doe",
    "responsible_name": "",
    "responsible_email": "",
    "chat_url": "http://127.0.0.1:8000/chat/1/messages/",
    "chat_id": "1",
    "is_new_chat": True,
    "is_group": False,
    "phone": "+972540000000",
}
JOHN: dict[str, JsonValue] = {"full_name": "John Doe", "phone": "+972540000000"}
AMNON: dict[str, JsonValue] = {"full_name": "Amnon Haha", "phone": ACCOUNT_PHONE}


class MessagePayload(Outgoing):
    """The body of a webhook without aggregation: one message."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "whatsapp_account": PAYLOAD_ACCOUNT,
                    "chat": PAYLOAD_CHAT,
                    "message": {
                        "direction": "received",
                        "timestamp": "2021-02-24T16:25:29+0000",
                        "message_id": "ddfskhsd76dsfs6dsd5skjsdhf",
                        "sender": JOHN,
                        "recipient": AMNON,
                        "text": "lorem ipsum",
                    },
                }
            ]
        }
    )

    whatsapp_account: PayloadAccount
    chat: PayloadChat
    message: PayloadMessage


class BundlePayload(Outgoing):
    """The body of a webhook with aggregation: one chat's messages of one period."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "whatsapp_account": PAYLOAD_ACCOUNT,
                    "chat": {**PAYLOAD_CHAT, "is_new_chat": False},
                    "messages": [
                        {
                            "direction": "received",
                            "timestamp": "2021-02-24T16:25:29+0000",
                            "message_id": "a1",
                            "sender": JOHN,
                            "recipient": AMNON,
                            "text": "Hi! How are you?",
                        },
                        {
                            "direction": "sent",
                            "timestamp": "2021-02-24T16:30:29+0000",
                            "message_id": "a2",
                            "sender": AMNON,
                            "recipient": JOHN,
                            "text": "I am fine <3",
                        },
                    ],
                    "first_message_timestamp": "2021-02-24T16:25:29+0000",
                    "last_message_timestamp": "2021-02-24T16:30:29+0000",
                    "aggregation": "from John Doe on 2021-02-24 16:25: Hi! How are you?<br/>"
                    "from Amnon Haha on 2021-02-24 16:30: I am fine &lt;3<br/>Click <a href='"
                    "http://127.0.0.1:8000/permalink/6f1c2f0e-8f4b-4a53-9d2e-1f0a9b7c3d11/'>"
                    "here</a> to open the conversation in chathooks",
                }
            ]
        }
    )

    whatsapp_account: PayloadAccount
    chat: PayloadChat
    messages: list[PayloadMessage] = Field(
        description="By timestamp, then arrival; at most 1,000 (a busier chat is split into "
        "several bundles, in order)."
    )
    first_message_timestamp: PayloadTimestamp
    last_message_timestamp: PayloadTimestamp
    aggregation: str = Field(
        description="The messages as HTML for a CRM note: a line `from {name} on {YYYY-MM-DD "
        "HH:MM}: {text}` each, names and texts escaped, joined with `<br/>`, then a link that "
        "opens the chat at the bundle's first message. At most 65,536 characters."
    )
