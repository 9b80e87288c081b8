"""One request to a source's URL (``/in/{key}``): find the source, verify, read, store
through ``ingest.ingest``, count, and log it — in one transaction.

The answers are SPEC §8's: an unknown key 404, a body over 8 MiB 413, not JSON (not a form,
for a kind whose ``WIRE`` says form) 400, a bad or missing signature/key 401 (nothing
stored), else 200 once the messages are stored: the counts, or what the kind's ``WIRE``
answers (Twilio: an empty TwiML ``<Response/>``).
A message that chathooks' own validation refuses (an id over 200 characters, a text over
65,536, a NUL character …) is counted as rejected and logged, and the request still gets
its 200: a sender would resend that same message for days, and it would never pass.
Nothing a sender puts in a request raises here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from chathooks import ingest, metrics
from chathooks.runtime import Runtime
from chathooks.schemas import MessageEvent, Party
from chathooks.sources import bodies
from chathooks.sources.manage import account_owner, kind_of
from chathooks.sources.protocol import RawRequest, Reading, Wire
from chathooks.store import sources, tenants
from chathooks.store.models import Source

MAX_BODY_BYTES = 8 * 1024 * 1024
LOGGED_BODY_CHARS = 16 * 1024
REASON_CHARS = 300
MASK = "••••••"
MASKED_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "apikey", "x-api-key"}
)
_BODY_APIKEY = re.compile(r'("apikey"\s*:\s*)"(?:[^"\\]|\\.)*"')


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    json: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    """A text answer (the handshake's challenge, Twilio's TwiML) instead of JSON."""
    media_type: str = "text/plain"


@dataclass(slots=True)
class Tally:
    stored: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "stored": self.stored,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "rejected": len(self.rejected),
        }

    def outcome(self) -> str:
        """The request's most telling result, for the log's outcome column."""
        if self.stored:
            return "stored"
        if self.duplicates:
            return "duplicate"
        return "rejected" if self.rejected else "ignored"

    def detail(self) -> str:
        parts = [f"{count} {name}" for name, count in self.counts().items() if count]
        return " · ".join(parts or ["nothing in it"]) + "".join(
            f"\nrejected {reason}" for reason in self.rejected
        )


UNKNOWN = Answer(404, {"detail": "no source has this URL"})


def handshake(rt: Runtime, key: str, request: RawRequest) -> Answer:
    """A sender's GET (Meta's subscription check)."""
    with rt.transaction() as session:
        source = sources.by_key(session, key)
        if source is None:
            return UNKNOWN
        result = kind_of(source).handshake(request.query, source.secrets)
        outcome = "verified" if result.status == 200 else "refused"
        _log(session, source, "GET", request, result.status, outcome, result.text, rt.clock.now())
    return Answer(result.status, text=result.text)


def receive(rt: Runtime, key: str, request: RawRequest) -> Answer:
    """A sender's POST; ``request.body`` may be cut just past ``MAX_BODY_BYTES``."""
    now = rt.clock.now()
    with rt.transaction() as session:
        source = sources.by_key(session, key)
        if source is None:
            return UNKNOWN
        refusal, body = _checked(source, request)
        if refusal is not None:
            outcome = _refused(refusal, kind_of(source).WIRE)
            _log(session, source, "POST", request, refusal.status, *outcome, now)
            return refusal
        tally = _store(session, source, _read(source, body), now, rt.settings.base_url)
        counts = tally.counts()
        sources.count(
            session,
            source.id,
            stored=tally.stored,
            duplicates=tally.duplicates,
            ignored=tally.ignored,
            rejected=len(tally.rejected),
            now=now,
        )
        _log(session, source, "POST", request, 200, tally.outcome(), tally.detail(), now)
    if tally.stored:
        rt.wake_local()  # other processes' workers were notified by the commit (ingest)
        metrics.count_ingested(source.kind, tally.stored)
    reply = kind_of(source).WIRE.answer
    return Answer(200, counts) if reply is None else Answer(200, text=reply[1], media_type=reply[0])


def _checked(source: Source, request: RawRequest) -> tuple[Answer | None, Any]:
    """(a refusal, or None and the parsed body)."""
    if len(request.body) > MAX_BODY_BYTES:
        return Answer(413, {"detail": f"the body is larger than {MAX_BODY_BYTES} bytes"}), None
    wire = kind_of(source).WIRE
    body = bodies.parsed(wire, request.body)
    if body is bodies.NOT_PARSED:
        return Answer(400, {"detail": f"the body is not {bodies.WHAT[wire.body]}"}), None
    if not kind_of(source).authentic(request, body, source.secrets):
        return Answer(401, {"detail": "missing or wrong signature or key"}), None
    return None, body


def _refused(answer: Answer, wire: Wire) -> tuple[str, str]:
    unparsed = f"not_{wire.body}"
    outcome = {413: "too_large", 400: unparsed, 401: "unauthorized"}[answer.status]
    return outcome, str(answer.json["detail"])


def _read(source: Source, body: Any) -> Reading:
    """The kind's reading of a verified body. The kinds read defensively; should one still
    fail on a shape nobody foresaw, the request is logged as rejected rather than a 500
    that the sender would repeat for days."""
    try:
        return kind_of(source).read(body)
    except Exception as error:
        return Reading(rejected=[f"event: could not read it ({type(error).__name__})"])


def _store(
    session: Session, source: Source, reading: Reading, now: datetime, base_url: str
) -> Tally:
    tally = Tally(ignored=reading.ignored, rejected=[r[:REASON_CHARS] for r in reading.rejected])
    events = []
    for candidate in reading.messages:
        # A sender that does not date its messages (Twilio): the time they arrived.
        event, reason = _validated({"timestamp": now, **candidate})
        if event is None:
            tally.rejected.append(reason[:REASON_CHARS])
        else:
            events.append(event)
    if not events:
        return tally
    owners = _accounts(session, source, {e.whatsapp_account_phone for e in events}, now)
    named = [_with_business_name(e, owners[e.whatsapp_account_phone]) for e in events]
    for outcome in ingest.ingest(session, source.workspace_id, named, now, base_url):
        if outcome.status == "duplicate":
            tally.duplicates += 1
        else:
            tally.stored += 1
    return tally


def _validated(candidate: dict[str, Any]) -> tuple[MessageEvent | None, str]:
    """The candidate as a ``MessageEvent`` (every cap of the API applies), or why not."""
    label = f"message {str(candidate.get('message_id'))[:100]!r}"
    try:
        event = MessageEvent.model_validate(candidate)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return None, f"{label}: {where}: {first['msg']}"
    return event, ""


def _accounts(session: Session, source: Source, phones: set[str], now: datetime) -> dict[str, str]:
    """The business numbers' accounts (created on their first event) and owners' names."""
    owners = tenants.account_owner_names(session, source.workspace_id, phones)
    missing = sorted(phones - owners.keys())
    if missing:
        owner = account_owner(session, source, now)
        tenants.insert_accounts(
            session,
            [
                {
                    "workspace_id": source.workspace_id,
                    "phone": phone,
                    "teammate_id": owner.id,
                    "source_id": source.id,
                    "created_at": now,
                }
                for phone in missing
            ],
        )
        owners = tenants.account_owner_names(session, source.workspace_id, phones)
    return owners


def _with_business_name(event: MessageEvent, owner_name: str) -> MessageEvent:
    """The business's side of a message is named after the account's owner, as the
    payload's ``whatsapp_account`` is."""
    if event.direction == "sent" and not event.sender.full_name:
        party = Party(full_name=owner_name, phone=event.sender.phone)
        return event.model_copy(update={"sender": party})
    if event.direction == "received" and not event.chat.is_group and not event.recipient.full_name:
        party = Party(full_name=owner_name, phone=event.recipient.phone)
        return event.model_copy(update={"recipient": party})
    return event


def _log(
    session: Session,
    source: Source,
    method: str,
    request: RawRequest,
    status_code: int,
    outcome: str,
    detail: str,
    now: datetime,
) -> None:
    secret_values = [v for v in source.secrets.values() if isinstance(v, str) and len(v) >= 4]

    def masked(value: str) -> str:
        """Secrets hidden; NUL written out (no database column takes it)."""
        for secret in secret_values:
            value = value.replace(secret, MASK)
        return value.replace("\x00", "\\u0000")

    headers = {
        name: MASK if name in MASKED_HEADERS else masked(value)
        for name, value in request.headers.items()
    }
    if method == "GET":
        body = "&".join(
            f"{name}={MASK if name == 'hub.verify_token' else value}"
            for name, value in request.query.items()
        )
    else:
        body = request.body[: LOGGED_BODY_CHARS * 4].decode("utf-8", "replace")
        body = _BODY_APIKEY.sub(rf'\1"{MASK}"', body)[:LOGGED_BODY_CHARS]
    sources.log_request(
        session,
        {
            "source_id": source.id,
            "at": now,
            "method": method,
            "status_code": status_code,
            "outcome": outcome,
            "detail": masked(detail),
            "headers": headers,
            "body": masked(body),
        },
    )
