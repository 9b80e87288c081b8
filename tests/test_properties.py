"""Properties, checked on many generated inputs (hypothesis): the wire format of SPEC §3 for
any message, and the parsing of whatever a receiver answers (Retry-After, charsets, headers,
bodies), which must never raise and must always be storable."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chathooks import payloads
from chathooks.deliver.transport import (
    RETRY_AFTER_CAP_SECONDS,
    charset_of,
    decode_body,
    parse_retry_after,
    received,
    storable_headers,
)
from chathooks.payload_models import BundlePayload, MessagePayload, PayloadChat, PayloadMessage
from chathooks.record import Sent, attempt_row
from chathooks.runtime import build_runtime
from chathooks.storable import text_problem
from chathooks.store import logs, tenants, webhooks
from tests.conftest import make_settings
from tests.test_payloads import BASE, UUID, context, message

TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000")
ENTITY_OR_TAG = re.compile(r"&(?:amp|lt|gt|quot|#x27);|<br/>|<a href='[^'<>]*'>|</a>")
moments = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001 hypothesis takes naive bounds
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=st.just(UTC),
)
texts = st.text(max_size=300)


def _message(i: int, when: datetime, text: str, sender: str) -> Any:
    m = message(i, "2021-02-24 16:25:00", text, sender)
    m.timestamp = when
    return m


@settings(max_examples=200, deadline=None)
@given(when=moments, text=texts, sender=texts, first=st.booleans())
def test_a_single_payload_has_every_field_as_a_string_and_a_spec_timestamp(
    when: datetime, text: str, sender: str, first: bool
) -> None:
    m = _message(1, when, text, sender)
    m.is_first_in_chat = first
    raw = payloads.single_body(context(), m, BASE)
    body = json.loads(raw)
    assert raw == payloads.dumps(body), "written as json.dumps writes it, byte for byte"
    assert list(body) == list(MessagePayload.model_fields)
    assert list(body["message"]) == list(PayloadMessage.model_fields)
    assert TIMESTAMP.fullmatch(body["message"]["timestamp"])
    assert body["message"]["text"] == text
    assert body["chat"]["is_new_chat"] is first
    for part in (body["whatsapp_account"], body["chat"], body["message"]):
        assert None not in part.values()


@settings(max_examples=100, deadline=None)
@given(lines=st.lists(st.tuples(moments, texts, texts), min_size=1, max_size=20))
def test_a_bundle_is_ordered_and_its_note_is_markup_only_where_chathooks_put_it(
    lines: list[tuple[datetime, str, str]],
) -> None:
    rows = [_message(i + 1, when, text, sender) for i, (when, text, sender) in enumerate(lines)]
    raw = payloads.bundle_body(context(), rows, BASE, UUID)
    body = json.loads(raw)
    assert raw == payloads.dumps(body), "written as json.dumps writes it, byte for byte"
    assert list(body) == list(BundlePayload.model_fields)
    assert list(body["chat"]) == list(PayloadChat.model_fields)
    stamps = [m["timestamp"] for m in body["messages"]]
    assert all(TIMESTAMP.fullmatch(s) for s in stamps)
    assert stamps == sorted(stamps)
    assert body["first_message_timestamp"] == stamps[0]
    assert body["last_message_timestamp"] == stamps[-1]
    _assert_parses(body["aggregation"])
    assert len(body["aggregation"]) <= payloads.NOTE_MAX_CHARS


def _assert_parses(note: str) -> None:
    """Every ``&`` starts a whole entity and every ``<`` a whole tag chathooks writes."""
    rest = ENTITY_OR_TAG.sub("", note)
    assert "&" not in rest and "<" not in rest and ">" not in rest, rest


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="<>&\"'x\n😀", max_size=400), budget=st.integers(2, 400))
@example(text="<" * 100, budget=50)
def test_a_cut_note_line_falls_between_entities_and_keeps_a_prefix(text: str, budget: int) -> None:
    line = payloads.note_line(_message(1, datetime(2021, 2, 24, tzinfo=UTC), text, "A&B"))
    cut = payloads.fit_line(line, budget)
    assert len(cut) <= max(budget, len(line) if len(line) <= budget else budget)
    _assert_parses(cut)
    kept = cut.removesuffix("…") if len(line) > budget else cut
    assert line.startswith(kept)


@settings(max_examples=500, deadline=None)
@given(value=st.text(max_size=40))
@example(value="²")
@example(value="١٢")
@example(value="9" * 5000)
@example(value="Wed, 21 Oct 2015 07:28:00 GMT")
@example(value="Wed, 21 Oct 99999 07:28:00 GMT")
@example(value="Mon, 01 Jan 0001 00:00:00 -0000")
def test_retry_after_is_ascii_seconds_or_a_date_capped_and_never_raises(value: str) -> None:
    parsed = parse_retry_after(value, 1_600_000_000.0)
    assert parsed is None or 0 <= parsed <= RETRY_AFTER_CAP_SECONDS
    if re.fullmatch(r"[ \t]*[0-9]+[ \t]*", value, re.ASCII):
        assert parsed == min(float(value.strip(" \t")), RETRY_AFTER_CAP_SECONDS)
    elif not value.isascii():
        assert parsed is None


@settings(max_examples=300, deadline=None)
@given(content=st.binary(max_size=200), charset=st.text(max_size=20))
@example(content=b"\x00abc\xff", charset="idna")
@example(content=b"abc", charset="rot13")
@example(content=b"\xff\xfe", charset="utf-16")
@example(content=b"abc", charset="utf\x008")
def test_a_body_in_any_charset_decodes_to_storable_text(content: bytes, charset: str) -> None:
    text = decode_body(content, charset)
    assert text_problem(text) is None
    if content.isascii() and b"\x00" not in content and charset.lower() in ("", "utf-8"):
        assert text == content.decode()


@settings(max_examples=300, deadline=None)
@given(content_type=st.text(max_size=60))
@example(content_type='text/html; charset="\udcff"')
@example(content_type="text/plain; charset*=utf-8''%FF")
def test_a_content_type_gives_an_ascii_charset_or_none(content_type: str) -> None:
    assert charset_of(content_type).isascii()


raw_headers = st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=60)), max_size=10)


@settings(max_examples=300, deadline=None)
@given(headers=raw_headers)
def test_headers_of_any_bytes_become_storable_text_and_repeats_are_kept(
    headers: list[tuple[bytes, bytes]],
) -> None:
    parsed = storable_headers(headers)
    assert all(text_problem(k) is None and text_problem(v) is None for k, v in parsed.items())
    for name, value in headers:
        if name.isascii() and value.isascii() and b"\x00" not in name + value:
            assert value.decode() in parsed[name.decode()]


@pytest.fixture
def stored(database_url: str) -> Any:
    """A real database with one webhook, to store generated answers in."""
    rt = build_runtime(make_settings(database_url))
    with rt.transaction() as session:
        workspace = tenants.add_workspace(
            session, name="A", owner_name="O", owner_email="o@a.test", token_hash="x", now=_now()
        )
        hook = webhooks.add(
            session,
            workspace_id=workspace.id,
            url="http://127.0.0.1/hook",
            aggregation="none",
            status="enabled",
            secret="whsec_x",
            status_changed_at=_now(),
            created_at=_now(),
        )
    yield rt, hook.id
    rt.engine.dispose()


def _now() -> datetime:
    return datetime(2021, 2, 24, tzinfo=UTC)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    status=st.integers(100, 599),
    headers=raw_headers,
    content=st.binary(max_size=300),
)
@example(status=429, headers=[(b"Retry-After", "²".encode())], content=b"\x00")
@example(status=200, headers=[(b"Content-Type", b"text/plain; charset=idna")], content=b"\xff")
def test_any_answer_is_stored_in_the_request_log(
    stored: Any, status: int, headers: list[tuple[bytes, bytes]], content: bytes
) -> None:
    rt, hook_id = stored
    outcome = received(status, 1.0, headers, content, _now().timestamp())
    sent = Sent(hook_id, None, None, 1, "http://127.0.0.1/hook", {}, "{}", outcome, _now())
    with rt.transaction() as session:
        logs.add_attempts(session, [attempt_row(sent)])
    with rt.transaction() as session:
        latest = logs.latest_attempts(session, hook_id)[0]
        assert latest.response_body == outcome.body
        assert latest.response_headers == outcome.headers
