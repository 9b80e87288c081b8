"""The user's documentation stays true: every relative link resolves inside the
repository, every setting is documented, and the documented request bodies are accepted."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chathooks.settings import Settings
from tests.conftest import Service, Workspace, wait_for
from tests.fake_senders.fixtures import (
    META_TOKEN,
    NUMBER_ID,
    TWILIO_SENDER,
    TWILIO_SID,
    TWILIO_TOKEN,
)
from tests.fake_senders.waha import API_KEY
from tests.receiver import Receiver
from tests.test_send import FAST, sent_deliveries
from tests.test_sources import Sender
from tests.test_twilio import PUBLIC, TwilioSender
from tests.test_twilio import fixture as twilio_fixture

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)|^\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
"""Inline links, and reference-style definitions (``[name]: target``)."""


def _prose(page: Path) -> str:
    return FENCED.sub("", page.read_text())


def _anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", _prose(page), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def _relative_links() -> list[tuple[Path, str]]:
    return [
        (page, target)
        for page in PAGES
        for inline, defined in LINK.findall(_prose(page))
        for target in [inline or defined]
        if not re.match(r"^[a-z][a-z+.-]*:", target)
    ]


def test_the_docs_exist_and_link_to_each_other() -> None:
    assert {p.name for p in PAGES} >= {"README.md", "index.md", "api.md", "operations.md"}
    assert len(_relative_links()) >= 10


@pytest.mark.parametrize(
    ("page", "target"), _relative_links(), ids=lambda v: v.name if isinstance(v, Path) else v
)
def test_every_relative_link_resolves_inside_the_repository(page: Path, target: str) -> None:
    path_part, _, anchor = target.partition("#")
    resolved = (page.parent / path_part).resolve() if path_part else page
    assert resolved.is_relative_to(ROOT), f"{page.name}: {target} leaves the repository"
    assert resolved.exists(), f"{page.name}: {target} does not exist"
    if anchor and resolved.suffix == ".md":
        assert anchor in _anchors(resolved), f"{page.name}: no heading #{anchor} in {target}"


def test_every_setting_is_documented() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    missing = [
        name for name in Settings.model_fields if f"`CHATHOOKS_{name.upper()}`" not in operations
    ]
    assert missing == []


def test_the_documented_batch_is_accepted(service: Service) -> None:
    team = service.workspace()
    team.account()
    blocks = re.findall(r"```json\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.DOTALL)
    batch = next(json.loads(b) for b in blocks if b.lstrip().startswith('{"messages"'))
    answer = team.post("/messages/batch", batch)
    assert answer.status_code == 202, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["accepted", "accepted"]
    # The error the page shows is the one a bad item gets.
    batch["messages"][1]["timestamp"] = "2021-02-24T16:26:02"
    batch["messages"][1]["message_id"] = "m-3"
    refused = team.post("/messages/batch", batch)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "messages", 1, "timestamp"]
    assert refused.json()["detail"][0]["type"] == "timezone_aware"


REPLIES = ROOT / "docs" / "replies.md"
SENDERS_SECTIONS = {
    "WAHA": "waha",
    "Evolution API": "evolution",
    "Meta's WhatsApp Cloud API": "whatsapp_cloud",
    "Twilio": "twilio",
}


@dataclass(frozen=True)
class Curl:
    """One documented ``curl`` and the answer the page shows after it (``# → …``)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    shown: str


def _curls(heading: str) -> list[Curl]:
    """The ``sh`` block of a sender's section in docs/replies.md, one call per ``curl``."""
    section = REPLIES.read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, heading
    curls = []
    for command in re.split(r"\n(?=curl )", block.group(1).strip()):
        lines = command.splitlines()
        call = " ".join(line.rstrip("\\").strip() for line in lines if not line.startswith("#"))
        target = re.match(r"curl -s (?:-X (\w+) )?localhost:8000(\S+)", call)
        assert target is not None, call
        headers = dict(h.split(": ", 1) for h in re.findall(r"-H ['\"]([^'\"]+)['\"]", call))
        assert headers.pop("Authorization") == "Bearer $TOKEN"
        data = re.search(r"-d '(.*)'", call)
        shown = [line.removeprefix("# → ") for line in lines if line.startswith("# → ")]
        curls.append(
            Curl(
                target.group(1) or "GET",
                target.group(2),
                headers,
                json.loads(data.group(1)) if data else None,
                shown[0] if shown else "",
            )
        )
    return curls


def _shown_in(real: dict[str, Any], shown: str) -> None:
    """Every field the page shows is in the real answer, equal, or (``…``) its start."""
    for field, value in json.loads(shown.replace(", …}", "}")).items():
        if isinstance(value, str) and value.endswith("…"):
            assert real[field].startswith(value[:-1]), (field, real[field])
        else:
            assert real[field] == value, (field, real[field])


def _shape(value: Any) -> Any:
    return {k: _shape(v) for k, v in value.items()} if isinstance(value, dict) else None


@pytest.mark.parametrize("heading", list(SENDERS_SECTIONS))
def test_each_senders_documented_path_runs_as_shown(
    heading: str,
    request: pytest.FixtureRequest,
    receiver: Receiver,
    start_service: Callable[..., Service],
) -> None:
    """Against the fake sender: the section's settings are accepted (credentials and the
    address swapped for the fake's), its Check, send and follow answer as the page shows,
    and each send reaches the webhook once, shaped as the page's example."""
    kind = SENDERS_SECTIONS[heading]
    service = (
        start_service(public_base_url=PUBLIC, **FAST)
        if kind == "twilio"
        else (start_service(**FAST))
    )
    team = service.workspace()
    team.webhook(receiver.url)
    fake, ours = _customer_wrote(request, team, kind)
    sends = 0
    for curl in _curls(heading):
        body = curl.body
        if curl.method == "PATCH":
            secrets = {name: ours.get(name, value) for name, value in body["secrets"].items()}
            body = {"secrets": {**secrets, "api_url": fake.url}}
        elif curl.path.startswith("/api/v1/outgoing/"):
            _settle(team, curl.path.removeprefix("/api/v1"))
        answer = team.request(
            curl.method, curl.path.removeprefix("/api/v1"), json=body, headers=curl.headers
        )
        assert answer.status_code == (202 if "/messages" in curl.path else 200), answer.text
        sends += "/messages" in curl.path
        if curl.shown:
            _shown_in(answer.json(), curl.shown)
    assert sends >= 1
    wait_for(lambda: len(sent_deliveries(receiver)) == sends, what="the sent deliveries")
    example = json.loads(re.findall(r"```json\n(.*?)```", REPLIES.read_text(), re.DOTALL)[0])
    for body in receiver.bodies():
        if body["message"]["direction"] == "sent":
            assert _shape(body) == _shape(example)
            assert body["message"]["sender"]["full_name"] == "Acme"


def _settle(team: Workspace, path: str) -> None:
    def settled() -> bool:
        team.service.clock.advance(0.5)
        return bool(team.get(path).json()["status"] != "queued")

    wait_for(settled, what=f"{path} to settle")


def _customer_wrote(
    request: pytest.FixtureRequest, team: Workspace, kind: str
) -> tuple[Any, dict[str, str]]:
    """The kind's fake sender, the credentials it takes, and a customer's message through
    the team's new source: its chat is chat 1, the source is source 1."""
    if kind == "twilio":
        twilio = request.getfixturevalue("fake_twilio")
        source = TwilioSender(team, auth_token=TWILIO_TOKEN)
        assert source.post(twilio_fixture("text_received"), key=TWILIO_TOKEN).status_code == 200
        return twilio, {"account_sid": TWILIO_SID, "sender": TWILIO_SENDER}
    fixture_name, fake_name, ours = {
        "waha": ("text_received", "waha", {"x_api_key": API_KEY}),
        "evolution": ("text_received", "fake_evolution", {}),
        "whatsapp_cloud": (
            "text_received",
            "graph",
            {"access_token": META_TOKEN, "phone_number_id": NUMBER_ID},
        ),
    }[kind]
    fake = request.getfixturevalue(fake_name)
    source = Sender(team, kind)
    source.deliver(fixture_name, stored=1)
    if kind == "waha":
        fake.webhook = (team.service.url + source.path, source.source["secrets"]["hmac_key"])
    assert source.source["id"] == 1
    return fake, ours
