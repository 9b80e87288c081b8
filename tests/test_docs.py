"""The user's documentation stays true: every relative link resolves inside the
repository, every setting is documented, and the documented request bodies are accepted."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chathooks.settings import Settings
from tests.conftest import Service

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
