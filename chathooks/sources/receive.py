"""Requests to a source's URL (``/in/{key}``): find the source, screen the raw bytes as
they arrive, read the body, and store its messages, counts and log entry in a transaction
shared with the other requests of the moment (``group_commit``).

The answers are SPEC §8's: an unknown key 404, a body over 8 MiB 413, a bad or missing
signature/key 401, not JSON (not a form, for a kind whose ``WIRE`` says form) 400, nothing
stored; else 200 once the messages are stored: the counts, or what the kind's ``WIRE``
answers (Twilio: an empty TwiML ``<Response/>``).
A message that chathooks' own validation refuses (an id over 200 characters, a text over
65,536, a NUL character …) is counted as rejected and logged, and the request still gets
its 200: a sender would resend that same message for days, and it would never pass.
Nothing a sender puts in a request raises here.

A refusal is cheap, so a flood of forged requests costs little: the source is known from
a read (without the writer's turn) made at most once a second per key, the signature is
checked on the raw bytes before anything is parsed, only one large body (past 256 KiB)
is read at a time while the others wait unread, and nothing is written but at most one
log entry a second per source, which says how many refusals it stands for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import tempfile
from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any

from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from chathooks import ingest, metrics
from chathooks.group_commit import GroupCommit
from chathooks.runtime import Runtime
from chathooks.schemas import MessageEvent
from chathooks.send.queue import apply_reports
from chathooks.sources import bodies
from chathooks.sources.kinds import KINDS
from chathooks.sources.manage import add_accounts, kind_of
from chathooks.sources.protocol import RawRequest, Reading, SendReport
from chathooks.sources.screening import Refusal, Screen
from chathooks.states import SourceKind
from chathooks.store import sources, tenants

log = logging.getLogger("chathooks.sources")

MAX_BODY_BYTES = 8 * 1024 * 1024
LOGGED_BODY_CHARS = 16 * 1024
HEAD_BYTES = LOGGED_BODY_CHARS * 4
"""What is kept of a body for the log (16 KiB of characters, at most 4 bytes each)."""
LARGE_BYTES = 256 * 1024
"""A body past this is large: real senders' events are a few KiB."""
LARGE_AT_ONCE = 1
"""Large bodies read at once (per process); the others wait their turn, unread."""
LARGE_BYTES_PER_SECOND = 8 * 1024 * 1024
"""How fast a large body is read past its first ``LARGE_BYTES``: a sender's rare 8 MiB body
takes a second, and a flood of large forgeries can't keep a core busy (measured: 16 × 8 MiB
in flight doubled the API's median answer unpaced, and left it within noise paced)."""
READ_IN_THREAD_BYTES = 64 * 1024
"""A body past this is parsed in a thread: the event loop keeps answering meanwhile."""
KNOWN_FOR = timedelta(seconds=1)
"""How long a source found by its key is used without a new read; a secret changed in that
time is still checked before anything is stored (the old one stops at once), and a new
one is accepted at the latest a second later."""
KEYS_KEPT = 10_000
LOG_REFUSALS_EVERY = timedelta(seconds=1)
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
UNAUTHORIZED = Answer(401, {"detail": "missing or wrong signature or key"})
TOO_LARGE = Answer(413, {"detail": f"the body is larger than {MAX_BODY_BYTES} bytes"})
OUTCOMES = {401: "unauthorized", 413: "too_large"}
"""The log's outcome of each refusal (a 400's is its reason: ``not_json``, ``not_form``)."""


@dataclass(frozen=True, slots=True)
class Known:
    """A source as a request is screened with: read without a write transaction."""

    id: int
    workspace_id: int
    kind: str
    secrets: Mapping[str, Any]
    name: str


class Body:
    """A body as it streams in: its head (for the log) always, and all of it only while it
    may still be accepted; a large one in a temporary file, so that a flood of large
    forgeries holds next to no memory."""

    def __init__(self, *, keep: bool) -> None:
        self.keep = keep
        self.head = b""
        self.size = 0
        self.chunks: list[bytes] = []
        self.file: IO[bytes] | None = None

    def feed(self, chunk: bytes) -> None:
        if len(self.head) < HEAD_BYTES:
            self.head += chunk[: HEAD_BYTES - len(self.head)]
        self.size += len(chunk)
        if not self.keep:
            return
        if self.file is None and self.size > LARGE_BYTES:
            self.file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by ``read``)
            self.file.writelines(self.chunks)
            self.chunks = []
        if self.file is None:
            self.chunks.append(chunk)
        else:
            self.file.write(chunk)

    def read(self) -> bytes:
        if self.file is None:
            return b"".join(self.chunks)
        with self.file:
            self.file.seek(0)
            return self.file.read()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


@dataclass(frozen=True, slots=True)
class Arrival:
    """A screened, parsed request on its way into the group's transaction."""

    source: Known
    request: RawRequest
    parsed: Any
    events: list[MessageEvent]
    read: Tally
    """Its ignored and rejected events (the group's tally adds what was stored)."""
    logged: dict[str, Any]
    """Its log entry's headers and body, masked."""
    reports: list[SendReport] = field(default_factory=list)
    """What the sender reports about messages we sent through it (``send.queue``)."""


class Inbound:
    """The app's door for source requests, made in its lifespan: the sources found by
    key, and when each last logged a refusal."""

    def __init__(self, rt: Runtime, group_commit: GroupCommit) -> None:
        self.rt = rt
        self.group_commit = group_commit
        self.known: dict[str, tuple[datetime, Known | None]] = {}
        self.refusals_logged: dict[int, tuple[datetime, int]] = {}
        """Source id → (when a refusal was last logged, refusals not logged since)."""
        self.large_bodies = asyncio.Semaphore(LARGE_AT_ONCE)
        self.refusing: set[int] = set()
        """Sources whose latest request to this process was refused: the log says once
        when a source starts refusing, and once when it stores again."""

    async def receive(
        self, key: str, headers: Mapping[str, str], chunks: AsyncIterable[bytes], *, url: str
    ) -> Answer:
        """A sender's POST: ``headers`` with lower-case names, ``chunks`` the body, ``url``
        the URL the sender called (``CHATHOOKS_PUBLIC_BASE_URL`` + the path and query)."""
        source = await self.find(key)
        if source is None:
            metrics.count_refused("unknown", "unknown_key")
            return UNKNOWN
        kind = KINDS[SourceKind(source.kind)]
        screen = kind.screen(headers, source.secrets, url=url)
        body = Body(keep=not screen.refused)
        try:
            await self._take(body, screen, chunks)
            if body.size > MAX_BODY_BYTES:
                too_large = Refusal("too_large", str(TOO_LARGE.json["detail"]))
                head = RawRequest(headers, body.head)
                return await self.refuse(source, head, TOO_LARGE, too_large)
            refusal = screen.verdict()
            if refusal is not None:
                head = RawRequest(headers, body.head)
                return await self.refuse(source, head, UNAUTHORIZED, refusal)
            raw = body.read()
        finally:
            body.close()
        request = RawRequest(headers, raw, url=url)
        now = self.rt.clock.now()
        if len(raw) > READ_IN_THREAD_BYTES:
            read = await run_in_threadpool(_arrival, source, request, now)
        else:
            read = _arrival(source, request, now)
        if isinstance(read, tuple):
            return await self.refuse(source, RawRequest(headers, body.head), *read)
        answer: Answer = await self.group_commit.store(store_arrivals, read)
        if answer.status == 200:
            self.stored(source, answer)
            if kind.WIRE.answer is not None:
                media_type, text = kind.WIRE.answer
                return Answer(200, answer.json, text=text, media_type=media_type)
        return answer

    def stored(self, source: Known, answer: Answer) -> None:
        metrics.count_ingested(source.kind, answer.json["stored"])
        if source.id in self.refusing:
            self.refusing.discard(source.id)
            _announce(source, "accepts requests again", logging.INFO)

    async def _take(self, body: Body, screen: Screen, chunks: AsyncIterable[bytes]) -> None:
        """The body into ``body`` and ``screen``, up to just past ``MAX_BODY_BYTES``.

        A large body waits for one of ``LARGE_AT_ONCE`` turns, unread (TCP holds its sender
        back), and its bytes past ``LARGE_BYTES`` are screened in a thread at the end (the
        hash runs without the GIL): a flood of large forgeries takes a bounded share of the
        event loop and of the memory."""
        async with contextlib.AsyncExitStack() as turn:
            later: list[bytes] = []
            async for chunk in chunks:
                if body.size <= LARGE_BYTES < body.size + len(chunk):
                    await turn.enter_async_context(self.large_bodies)
                body.feed(chunk)
                if body.size > MAX_BODY_BYTES:
                    return
                if body.size <= LARGE_BYTES:
                    screen.feed(chunk)
                    continue
                later.append(chunk)
                if len(later) >= 16:  # 1 MiB or so: hashed meanwhile, kept in the file
                    await run_in_threadpool(_feed_all, screen, later)
                    later = []
                await asyncio.sleep(len(chunk) / LARGE_BYTES_PER_SECOND)
            await run_in_threadpool(_feed_all, screen, later) if later else None

    async def find(self, key: str) -> Known | None:
        if len(key) > 64:
            return None
        now = self.rt.clock.now()
        cached = self.known.get(key)
        if cached is not None and timedelta(0) <= now - cached[0] < KNOWN_FOR:
            return cached[1]
        found = await run_in_threadpool(self._look_up, key)
        if len(self.known) >= KEYS_KEPT:
            self.known.clear()
        self.known[key] = (now, found)
        return found

    def _look_up(self, key: str) -> Known | None:
        with self.rt.reading() as connection:
            found = sources.screening(connection, key)
        return None if found is None else Known(*found)

    async def refuse(
        self, source: Known, request: RawRequest, answer: Answer, refusal: Refusal
    ) -> Answer:
        """Counted always; logged unless the source logged a refusal less than a second
        ago (the next entry then says how many were not)."""
        metrics.count_refused(source.kind, refusal.reason)
        if source.id not in self.refusing:
            self.refusing.add(source.id)
            _announce(source, f"started refusing requests: {refusal.detail}", logging.WARNING)
        now = self.rt.clock.now()
        last, dropped = self.refusals_logged.get(source.id, (None, 0))
        if last is not None and timedelta(0) <= now - last < LOG_REFUSALS_EVERY:
            self.refusals_logged[source.id] = (last, dropped + 1)
            return answer
        self.refusals_logged[source.id] = (now, 0)
        detail = refusal.detail
        if dropped:
            detail += f"\n{dropped} more refused since the previous entry (not logged one by one)"
        outcome = OUTCOMES.get(answer.status, refusal.reason)
        row = _log_row(
            source,
            "POST",
            request,
            status_code=answer.status,
            outcome=outcome,
            detail=detail,
            now=now,
        )
        try:
            await self.group_commit.store(store_log_rows, row)
        except Exception as error:  # the source was deleted meanwhile, or the database failed
            log.warning("could not log a refused request to source %s: %s", source.id, error)
        return answer


def _announce(source: Known, what: str, level: int) -> None:
    """A change in whether a source's sender gets through: its id, name, kind, workspace and
    the latest refusal's reason (never a secret or a body)."""
    name = json.dumps(source.name, ensure_ascii=False)
    fields = {
        "workspace_id": source.workspace_id,
        "source_id": source.id,
        "source_name": source.name,
        "source_kind": source.kind,
    }
    line = f"source {source.id} {name} ({source.kind}) of workspace {source.workspace_id} {what}"
    log.log(level, "%s", line, extra=fields)


def _feed_all(screen: Screen, chunks: list[bytes]) -> None:
    for chunk in chunks:
        screen.feed(chunk)


def _arrival(source: Known, request: RawRequest, now: datetime) -> Arrival | tuple[Answer, Refusal]:
    """The body parsed, confirmed and read, or why it is refused. A sender that does not
    date its messages (Twilio) has them dated ``now``, when they arrived."""
    kind = KINDS[SourceKind(source.kind)]
    body = bodies.parsed(kind.WIRE, request.body)
    if body is bodies.NOT_PARSED:
        detail = f"the body is not {bodies.WHAT[kind.WIRE.body]}"
        return Answer(400, {"detail": detail}), Refusal(f"not_{kind.WIRE.body}", detail)
    refusal = kind.screen(request.headers, source.secrets, url=request.url).confirm(body)
    if refusal is not None:
        return UNAUTHORIZED, refusal
    reading = _read(source.kind, body)
    tally = Tally(ignored=reading.ignored, rejected=[r[:REASON_CHARS] for r in reading.rejected])
    events = []
    for candidate in reading.messages:
        event, reason = _validated({"timestamp": now, **candidate})
        if event is None:
            tally.rejected.append(reason[:REASON_CHARS])
        else:
            events.append(event)
    logged = _masked(source, "POST", request)
    return Arrival(source, request, body, events, tally, logged, reading.reports)


def handshake(rt: Runtime, key: str, request: RawRequest) -> Answer:
    """A sender's GET (Meta's subscription check)."""
    with rt.transaction() as session:
        source = sources.by_key(session, key)
        if source is None:
            return UNKNOWN
        result = kind_of(source).handshake(request.query, source.secrets)
        outcome = "verified" if result.status == 200 else "refused"
        known = Known(source.id, source.workspace_id, source.kind, source.secrets, source.name)
        row = _log_row(
            known,
            "GET",
            request,
            status_code=result.status,
            outcome=outcome,
            detail=result.text,
            now=rt.clock.now(),
        )
        sources.log_requests(session, [row])
    return Answer(result.status, text=result.text)


def store_log_rows(
    session: Session, rows: Sequence[dict[str, Any]], *, now: datetime, base_url: str
) -> list[None]:
    sources.log_requests(session, rows)
    return [None] * len(rows)


def store_arrivals(
    session: Session, arrivals: Sequence[Arrival], *, now: datetime, base_url: str
) -> list[Answer]:
    """The group's source requests: each source read again (a changed secret is checked,
    a deleted source is a 404), then every workspace's events in one ``ingest``, the
    sender's reports on our sends applied, each source's counts in one statement, and
    every request's log entry in one insert."""
    current = sources.feeding(session, {a.source.id for a in arrivals})
    answers: dict[int, Answer] = {}
    rows: list[dict[str, Any]] = []
    by_workspace: dict[int, list[int]] = {}
    for index, arrival in enumerate(arrivals):
        source = current.get(arrival.source.id)
        if source is None:
            answers[index] = UNKNOWN
            continue
        refusal = _rescreened(source, arrival)
        if refusal is not None:
            metrics.count_refused(source.kind, refusal.reason)
            answers[index] = UNAUTHORIZED
            rows.append(
                _entry(
                    arrival,
                    status_code=401,
                    outcome="unauthorized",
                    detail=refusal.detail,
                    now=now,
                )
            )
            continue
        by_workspace.setdefault(source.workspace_id, []).append(index)
    totals: dict[int, Tally] = {}
    for workspace, indexes in by_workspace.items():
        accepted = [arrivals[i] for i in indexes]
        tallies = _store_workspace(
            session, workspace, accepted, current=current, now=now, base_url=base_url
        )
        for index, arrival, tally in zip(indexes, accepted, tallies, strict=True):
            apply_reports(session, arrival.source.id, arrival.reports)
            answers[index] = Answer(200, tally.counts())
            rows.append(
                _entry(
                    arrival,
                    status_code=200,
                    outcome=tally.outcome(),
                    detail=tally.detail(),
                    now=now,
                )
            )
            total = totals.setdefault(arrival.source.id, Tally())
            total.stored += tally.stored
            total.duplicates += tally.duplicates
            total.ignored += tally.ignored
            total.rejected += tally.rejected
    for source_id, total in totals.items():
        sources.count(
            session,
            source_id,
            stored=total.stored,
            duplicates=total.duplicates,
            ignored=total.ignored,
            rejected=len(total.rejected),
            now=now,
        )
    sources.log_requests(session, rows)
    return [answers[index] for index in range(len(arrivals))]


def _rescreened(source: sources.Feeding, arrival: Arrival) -> Refusal | None:
    """A request screened with secrets that have changed since is screened again."""
    if source.secrets == arrival.source.secrets:
        return None
    screen = KINDS[SourceKind(source.kind)].screen(
        arrival.request.headers, source.secrets, url=arrival.request.url
    )
    screen.feed(arrival.request.body)
    return screen.verdict() or screen.confirm(arrival.parsed)


def _store_workspace(
    session: Session,
    workspace: int,
    arrivals: list[Arrival],
    *,
    current: Mapping[int, sources.Feeding],
    now: datetime,
    base_url: str,
) -> list[Tally]:
    """One workspace's events: business accounts made where missing, then one ``ingest``
    (given the accounts and their owners' names, read once).
    Each arrival's tally: what it was read with, and what of it was stored. (New tallies:
    a group that fails is stored again, one request at a time.)"""
    tallies = [Tally(ignored=a.read.ignored, rejected=list(a.read.rejected)) for a in arrivals]
    phones: dict[int, set[str]] = {}
    for arrival in arrivals:
        phones.setdefault(arrival.source.id, set()).update(
            e.whatsapp_account_phone for e in arrival.events
        )
    accounts: dict[str, tuple[int, str]] = {}
    for source_id, wanted in phones.items():
        if wanted:
            accounts |= _accounts(session, current[source_id], wanted, now)
    events = [e for a in arrivals for e in a.events]
    outcomes = iter(
        ingest.ingest(
            session,
            workspace,
            events,
            now,
            base_url,
            accounts={phone: found[0] for phone, found in accounts.items()},
            owner_names={phone: found[1] for phone, found in accounts.items()},
        )
        if events
        else []
    )
    for arrival, tally in zip(arrivals, tallies, strict=True):
        for _ in arrival.events:
            if next(outcomes).status == "duplicate":
                tally.duplicates += 1
            else:
                tally.stored += 1
    return tallies


def _read(kind: str, body: Any) -> Reading:
    """The kind's reading of a verified body. The kinds read defensively; should one still
    fail on a shape nobody foresaw, the request is logged as rejected rather than a 500
    that the sender would repeat for days."""
    try:
        return KINDS[SourceKind(kind)].read(body)
    except Exception as error:
        return Reading(rejected=[f"event: could not read it ({type(error).__name__})"])


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


def _accounts(
    session: Session, source: sources.Feeding, phones: set[str], now: datetime
) -> dict[str, tuple[int, str]]:
    """The business numbers' accounts (created on their first event): (id, owner's name)."""
    found = tenants.accounts_with_owners(session, source.workspace_id, phones)
    missing = phones - found.keys()
    if missing:
        add_accounts(session, source, missing, now)
        found = tenants.accounts_with_owners(session, source.workspace_id, phones)
    return found


def _masked(source: Known, method: str, request: RawRequest) -> dict[str, Any]:
    """A log entry's headers and body: secrets hidden, NUL written out (no database column
    takes it)."""
    secret_values = _secret_values(source)
    headers = {
        name: MASK if name in MASKED_HEADERS else _hidden(value, secret_values)
        for name, value in request.headers.items()
    }
    if method == "GET":
        body = "&".join(
            f"{name}={MASK if name == 'hub.verify_token' else value}"
            for name, value in request.query.items()
        )
    else:
        body = request.body[:HEAD_BYTES].decode("utf-8", "replace")
        body = _BODY_APIKEY.sub(rf'\1"{MASK}"', body)[:LOGGED_BODY_CHARS]
    return {
        "source_id": source.id,
        "method": method,
        "headers": headers,
        "body": _hidden(body, secret_values),
    }


def _secret_values(source: Known) -> list[str]:
    """The source's credentials (keys, tokens); its sender's address, instance or session
    name and number id are not secret, and masking them would blank what a log is read for."""
    shown = {s.name for s in KINDS[SourceKind(source.kind)].SECRETS if s.role != "credential"}
    return [
        v
        for name, v in source.secrets.items()
        if name not in shown and isinstance(v, str) and len(v) >= 4
    ]


def _hidden(value: str, secret_values: list[str]) -> str:
    for secret in secret_values:
        value = value.replace(secret, MASK)
    return value.replace("\x00", "\\u0000")


def _entry(
    arrival: Arrival, *, status_code: int, outcome: str, detail: str, now: datetime
) -> dict[str, Any]:
    hidden = _hidden(detail, _secret_values(arrival.source))
    return {
        **arrival.logged,
        "at": now,
        "status_code": status_code,
        "outcome": outcome,
        "detail": hidden,
    }


def _log_row(
    source: Known,
    method: str,
    request: RawRequest,
    *,
    status_code: int,
    outcome: str,
    detail: str,
    now: datetime,
) -> dict[str, Any]:
    hidden = _hidden(detail, _secret_values(source))
    return {
        **_masked(source, method, request),
        "at": now,
        "status_code": status_code,
        "outcome": outcome,
        "detail": hidden,
    }
