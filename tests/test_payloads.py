"""Pure functions of the wire format and the period schedule: no database, no network."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from chathooks import payloads
from chathooks.schedule import period_of
from chathooks.store.models import Chat, Message, Teammate, WhatsappAccount

BASE = "https://hooks.example"
UUID = "77a28d55-5345-5435-8c72-3a7bcad8ded9"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("aggregation", "received", "start", "end"),
    [
        ("1h", "2030-03-05 00:00:00", "2030-03-05 00:00:00", "2030-03-05 01:00:00"),
        ("1h", "2030-03-05 13:59:59.999999", "2030-03-05 13:00:00", "2030-03-05 14:00:00"),
        ("1h", "2030-12-31 23:30:00", "2030-12-31 23:00:00", "2031-01-01 00:00:00"),
        ("6h", "2030-03-05 05:59:59", "2030-03-05 00:00:00", "2030-03-05 06:00:00"),
        ("6h", "2030-03-05 06:00:00", "2030-03-05 06:00:00", "2030-03-05 12:00:00"),
        ("6h", "2030-03-05 17:10:00", "2030-03-05 12:00:00", "2030-03-05 18:00:00"),
        ("6h", "2030-03-05 23:59:59", "2030-03-05 18:00:00", "2030-03-06 00:00:00"),
        ("12h", "2030-03-05 11:59:59", "2030-03-05 00:00:00", "2030-03-05 12:00:00"),
        ("12h", "2030-03-05 12:00:00", "2030-03-05 12:00:00", "2030-03-06 00:00:00"),
        ("24h", "2030-03-05 00:00:00", "2030-03-05 00:00:00", "2030-03-06 00:00:00"),
        ("24h", "2030-02-28 23:59:59", "2030-02-28 00:00:00", "2030-03-01 00:00:00"),
    ],
)
def test_periods_are_aligned_to_utc(aggregation: str, received: str, start: str, end: str) -> None:
    assert period_of(aggregation, at(received)) == (at(start), at(end))


@pytest.mark.parametrize("aggregation", ["1h", "6h", "12h", "24h"])
def test_periods_use_utc_whatever_the_offset_of_the_moment(aggregation: str) -> None:
    """03:30 at +05:00 is 22:30 UTC the day before: the UTC period, not the local one."""
    local = datetime(2030, 3, 5, 3, 30, tzinfo=timezone(timedelta(hours=5)))
    start, end = period_of(aggregation, local)
    utc = at("2030-03-04 22:30:00")
    assert start.tzinfo is not None and start.utcoffset() == timedelta(0)
    assert start <= utc < end
    assert end - start == timedelta(hours=int(aggregation[:-1]))
    assert start.minute == start.second == start.microsecond == 0
    assert start.hour % int(aggregation[:-1]) == 0


def test_unknown_aggregation_has_no_period() -> None:
    with pytest.raises(KeyError):
        period_of("none", at("2030-03-05 00:00:00"))


def context(**chat: Any) -> payloads.ChatContext:
    values: dict[str, Any] = {
        "id": 42,
        "full_name": "John Doe>",
        "is_group": False,
        "phone": "+97254000000",
    }
    values.update(chat)
    return payloads.ChatContext(
        Chat(**values),
        WhatsappAccount(id=1, phone="+972500000000", teammate_id=1),
        Teammate(id=1, full_name="Amnon Haha", email="Amnon@acme.com"),
        Teammate(id=2, full_name="Amnon", email="Amnon@acme.com"),
    )


def message(
    row_id: int,
    when: str,
    text: str = "lorem ipsum",
    sender: str = "John Doe",
    *,
    first: bool = False,
    recipient: str = "Jane Smith",
    external_id: str | None = None,
) -> Message:
    return Message(
        id=row_id,
        chat_id=42,
        external_id=external_id or f"m{row_id}",
        direction="received",
        timestamp=at(when),
        sender_name=sender,
        sender_phone="+972540000000",
        recipient_name=recipient,
        recipient_phone="+972550000000",
        text=text,
        is_first_in_chat=first,
    )


def test_bundle_body_is_the_spec_example() -> None:
    """SPEC §3 and the source's example, with `</a>` instead of the source's `</h>` typo."""
    later = message(2, "2021-02-24 16:30:29", "I am fine, how are you?", "Jane Smith")
    earlier = message(1, "2021-02-24 16:25:29", "Hi! How are you?", first=True)
    body = payloads.bundle_body(context(), [later, earlier], BASE, UUID)
    expected = {
        "whatsapp_account": {
            "full_name": "Amnon Haha",
            "email": "Amnon@acme.com",
            "phone": "+972500000000",
        },
        "chat": {
            "full_name": "John Doe>",
            "responsible_name": "Amnon",
            "responsible_email": "Amnon@acme.com",
            "chat_url": f"{BASE}/chat/42/messages/",
            "chat_id": "42",
            "is_new_chat": True,
            "is_group": False,
            "phone": "+97254000000",
        },
        "messages": [
            {
                "direction": "received",
                "timestamp": "2021-02-24T16:25:29+0000",
                "message_id": "m1",
                "sender": {"full_name": "John Doe", "phone": "+972540000000"},
                "recipient": {"full_name": "Jane Smith", "phone": "+972550000000"},
                "text": "Hi! How are you?",
            },
            {
                "direction": "received",
                "timestamp": "2021-02-24T16:30:29+0000",
                "message_id": "m2",
                "sender": {"full_name": "Jane Smith", "phone": "+972540000000"},
                "recipient": {"full_name": "Jane Smith", "phone": "+972550000000"},
                "text": "I am fine, how are you?",
            },
        ],
        "first_message_timestamp": "2021-02-24T16:25:29+0000",
        "last_message_timestamp": "2021-02-24T16:30:29+0000",
        "aggregation": (
            "from John Doe on 2021-02-24 16:25: Hi! How are you?<br/>"
            "from Jane Smith on 2021-02-24 16:30: I am fine, how are you?<br/>"
            f"Click <a href='{BASE}/permalink/{UUID}/'>here</a> to open the conversation "
            "in chathooks"
        ),
    }
    assert json.loads(body) == expected
    assert body == payloads.dumps(expected), "byte for byte, keys in the spec's order"


def bundle(ctx: payloads.ChatContext, messages: list[Message]) -> dict[str, Any]:
    return dict(json.loads(payloads.bundle_body(ctx, messages, BASE, UUID)))


def test_same_timestamp_keeps_arrival_order_and_is_new_chat_only_with_first() -> None:
    second = message(8, "2021-02-24 16:25:29", "second")
    first = message(7, "2021-02-24 16:25:29", "first")
    payload = bundle(context(), [second, first])
    assert [m["text"] for m in payload["messages"]] == ["first", "second"]
    assert payload["chat"]["is_new_chat"] is False


def test_note_escapes_names_and_text_and_keeps_line_breaks_and_emoji() -> None:
    evil = message(1, "2021-02-24 16:25:00", "a <script>x</script> & 'q'\nb\r\nc 👋", "<b>Bob</b>")
    note = payloads.aggregation_note([evil], "L")
    assert note == (
        "from &lt;b&gt;Bob&lt;/b&gt; on 2021-02-24 16:25: "
        "a &lt;script&gt;x&lt;/script&gt; &amp; &#x27;q&#x27;<br/>b<br/>c 👋"
        "<br/>Click <a href='L'>here</a> to open the conversation in chathooks"
    )
    body = payloads.bundle_body(context(), [evil], BASE, UUID)
    assert json.loads(body)["messages"][0]["text"] == "a <script>x</script> & 'q'\nb\r\nc 👋"
    assert "👋" in body


def test_group_chat_phone_is_empty() -> None:
    payload = bundle(context(is_group=True), [message(1, "2021-02-24 16:25:00")])
    assert payload["chat"]["is_group"] is True
    assert payload["chat"]["phone"] == ""


def test_bundle_fits_counts_each_limit() -> None:
    footer = len(payloads.note_footer(payloads.permalink(BASE, UUID)))
    room = payloads.BUNDLE_MAX_BYTES - payloads.BUNDLE_ENVELOPE_BYTES
    assert payloads.bundle_fits(1000, 10, 10, footer)
    assert not payloads.bundle_fits(1001, 10, 10, footer)
    assert payloads.bundle_fits(1, room, 10, footer)
    assert not payloads.bundle_fits(1, room + 1, 10, footer)
    # each line's cost includes a "<br/>" the last line does not need
    last = payloads.NOTE_MAX_CHARS + len("<br/>") - footer
    assert payloads.bundle_fits(1, 10, last, footer)
    assert not payloads.bundle_fits(1, 10, last + 1, footer)


def test_one_message_note_is_cut_to_fit_the_note_limit() -> None:
    link = payloads.permalink(BASE, UUID)
    huge = message(1, "2021-02-24 16:25:00", "<" * 65536)
    note = payloads.aggregation_note([huge], link)
    assert payloads.NOTE_MAX_CHARS - len("&lt;") < len(note) <= payloads.NOTE_MAX_CHARS
    assert note.endswith("&lt;…" + payloads.note_footer(link)), "cut between entities"
    body, note_chars = payloads.bundle_costs(huge, len(payloads.note_footer(link)))
    assert payloads.bundle_fits(1, body, note_chars, len(payloads.note_footer(link)))


def pack(messages: list[Message]) -> list[list[Message]]:
    """Split messages as ``ingest.gather`` does: add while ``bundle_fits``, else start anew."""
    footer = len(payloads.note_footer(payloads.permalink(BASE, UUID)))
    bundles: list[list[Message]] = []
    count = body = note = 0
    for m in messages:
        add_body, add_note = payloads.bundle_costs(m, footer)
        if not bundles or not payloads.bundle_fits(
            count + 1, body + add_body, note + add_note, footer
        ):
            bundles.append([])
            count = body = note = 0
        bundles[-1].append(m)
        count, body, note = count + 1, body + add_body, note + add_note
    return bundles


SHAPES = {
    "many short": dict(text="ok", count=2500),
    "long ascii": dict(text="x" * 20000, count=12),
    "long emoji": dict(text="😀" * 65536, count=4),
    "escaped markup": dict(text="<&>" * 5000, count=20),
    # much of the body is in fields the note does not show: the note's bytes matter too
    "heavy recipients": dict(text="😀" * 50, count=1000, recipient="😀" * 200, sender=""),
    "control characters": dict(text="\x01" * 30, count=1000, recipient="\x02" * 200, sender=""),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_split_bundles_stay_within_every_limit_in_order(shape: str) -> None:
    spec: dict[str, Any] = dict(SHAPES[shape])
    count = spec.pop("count")
    start = at("2030-03-05 00:00:00")
    messages = [
        message(
            i,
            str(start + timedelta(seconds=i)).removesuffix("+00:00"),
            external_id="i" * 190 + str(i),
            **spec,
        )
        for i in range(1, count + 1)
    ]
    bundles = pack(messages)
    assert [m.id for b in bundles for m in b] == [m.id for m in messages]
    for part in bundles:
        body = payloads.bundle_body(context(full_name="😀" * 200), part, BASE, UUID)
        payload = json.loads(body)
        assert len(payload["messages"]) <= payloads.BUNDLE_MAX_MESSAGES
        assert len(payload["aggregation"]) <= payloads.NOTE_MAX_CHARS
        assert len(body.encode()) <= payloads.BUNDLE_MAX_BYTES
    if count > 1000:
        assert len(bundles) >= 3
