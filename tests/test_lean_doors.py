"""A message's two doors (``POST /api/v1/messages``, ``POST /in/{key}``) are answered before
FastAPI's stack (``api.lean``): every request they do not take must still get FastAPI's
answer, and every message they take must be stored as FastAPI's route would."""

from __future__ import annotations

import json
import logging
import socket
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from chathooks.store.models import Message
from tests.conftest import Service, event, wait_for


def _stored(service: Service) -> int:
    with service.rt.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(Message)) or 0)


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON; charset=utf-8", "application/event+json"],
)
def test_a_message_is_taken_however_its_json_is_labelled(
    service: Service, content_type: str
) -> None:
    team = service.workspace()
    team.account()
    # The scheme in any case.
    headers = {"Authorization": f"bearer {team.token}", "Content-Type": content_type}
    body = json.dumps(event("m1")).encode()
    first = service.http.post("/api/v1/messages", content=body, headers=headers)
    assert first.status_code == 202, first.text
    assert first.json() == {
        "message_id": "m1",
        "chat_id": first.json()["chat_id"],
        "status": "accepted",
    }
    again = service.http.post("/api/v1/messages", content=body, headers=headers)
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert _stored(service) == 1


def test_a_message_the_doors_do_not_take_gets_fastapis_answer(service: Service) -> None:
    team = service.workspace()
    team.account()
    body = json.dumps(event("m1"))
    for labels in ({"Content-Type": "text/plain"}, {}):  # FastAPI reads neither as JSON
        unread = service.http.post(
            "/api/v1/messages", content=body, headers={**team.headers, **labels}
        )
        assert unread.status_code == 422, unread.text
        assert unread.json()["detail"][0]["loc"] == ["body"]
    wrong_token = service.http.post(
        "/api/v1/messages", content=body, headers={"Authorization": "Bearer nope"}
    )
    assert wrong_token.status_code == 401
    assert wrong_token.headers["www-authenticate"] == "Bearer"
    assert wrong_token.json() == {"detail": "missing or unknown bearer token"}
    assert _stored(service) == 0


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/in/", 404),
        ("POST", "/in/some-key/messages-upsert/more", 404),
        ("GET", "/api/v1/messages", 405),
        ("POST", "/api/v1/messages/", 307),
    ],
)
def test_paths_beside_the_doors_are_answered_as_routed(
    service: Service, method: str, path: str, status: int
) -> None:
    answer = service.http.request(method, path, follow_redirects=False)
    assert answer.status_code == status, answer.text
    if status == 405:
        assert answer.headers["allow"] == "POST"


def test_a_sender_gone_before_its_body_arrived_is_no_error(service: Service) -> None:
    team = service.workspace()
    team.account()
    logged: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = logged.append  # type: ignore[method-assign]
    errors = logging.getLogger("uvicorn.error")
    errors.addHandler(handler)
    try:
        address = urlsplit(service.url)
        with socket.create_connection((address.hostname, address.port)) as client:
            client.sendall(
                b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\n"
                + f"Authorization: Bearer {team.token}\r\n".encode()
                + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
            )
            wait_for(lambda: service.server.server_state.tasks, what="the request's task")
        wait_for(lambda: not service.server.server_state.tasks, what="the request to end")
    finally:
        errors.removeHandler(handler)
    assert [r.getMessage() for r in logged if r.levelno >= logging.ERROR] == []
    assert _stored(service) == 0
