"""Teammates and WhatsApp accounts through the API: an invitation carries its
set-password link; removing a teammate hands their accounts to the owner and leaves
their chats without a responsible; accounts are listed with their owners."""

from __future__ import annotations

from typing import Any

from chathooks import page_sessions
from tests.conftest import PUBLIC_BASE, Service, Workspace, event, wait_for
from tests.receiver import Receiver


def _teammate(team: Workspace, email: str) -> dict[str, Any]:
    return next(t for t in team.get("/teammates").json() if t["email"] == email)


def test_an_invitation_answers_with_the_set_password_link(service: Service) -> None:
    team = service.workspace()
    invited = team.post("/teammates", {"full_name": "Carl New", "email": "Carl@Acme.test"})
    assert invited.status_code == 201
    body = invited.json()
    assert (body["full_name"], body["email"]) == ("Carl New", "carl@acme.test")
    assert body["password_link"].startswith(PUBLIC_BASE + "/set-password/")
    again = team.post("/teammates", {"full_name": "Carl", "email": "carl@acme.test"})
    assert again.status_code == 409


def test_removing_a_teammate_moves_their_accounts_and_unassigns_their_chats(
    service: Service, receiver: Receiver
) -> None:
    team = service.workspace()
    team.account(full_name="Amnon Haha", email="amnon@acme.test")
    team.webhook(receiver.url)
    chat_id = team.post("/messages", event("m1")).json()["chat_id"]
    assert (
        team.patch(f"/chats/{chat_id}", {"responsible_email": "amnon@acme.test"}).status_code == 200
    )
    amnon = _teammate(team, "amnon@acme.test")
    source = team.post(
        "/sources",
        {"kind": "waha", "name": "Amnon's phone", "teammate_email": "amnon@acme.test"},
    ).json()
    with service.rt.transaction() as session:
        page_sessions.start(session, amnon["id"], service.clock.now())

    assert team.request("DELETE", f"/teammates/{amnon['id']}").status_code == 204
    assert team.get(f"/sources/{source['id']}").json()["teammate_email"] == ""
    assert [t["email"] for t in team.get("/teammates").json()] == ["owner@acme.test"]
    assert team.get("/whatsapp-accounts").json() == [
        {
            "id": 1,
            "phone": "+972500000000",
            "name": "",
            "full_name": "Olive Owner",
            "email": "owner@acme.test",
            "source": None,
        }
    ]
    chat = team.get(f"/chats/{chat_id}").json()
    assert (chat["responsible_name"], chat["responsible_email"]) == ("", "")

    team.post("/messages", event("m2"))
    wait_for(lambda: len(receiver.requests) == 2, what="the next message")
    payload = receiver.requests[1].json
    assert payload["whatsapp_account"]["email"] == "owner@acme.test"
    assert payload["chat"]["responsible_email"] == ""
    assert team.request("DELETE", f"/teammates/{amnon['id']}").status_code == 404


def test_the_owner_cant_be_removed_nor_a_teammate_of_another_workspace(service: Service) -> None:
    team = service.workspace()
    owner = _teammate(team, "owner@acme.test")
    answer = team.request("DELETE", f"/teammates/{owner['id']}")
    assert answer.status_code == 409
    assert "owner" in answer.json()["detail"]
    other = service.workspace("Other", owner_email="boss@other.test")
    helper = other.post("/teammates", {"full_name": "Hel Per", "email": "help@other.test"}).json()
    assert team.request("DELETE", f"/teammates/{helper['id']}").status_code == 404
    assert [t["email"] for t in other.get("/teammates").json()] == [
        "boss@other.test",
        "help@other.test",
    ]


def test_accounts_are_listed_with_their_owners(service: Service) -> None:
    team = service.workspace()
    assert team.get("/whatsapp-accounts").json() == []
    team.account("+972500000000", "Amnon Haha", "amnon@acme.test")
    team.account("+972500000001", "Olive Owner", "owner@acme.test")
    assert [(a["phone"], a["email"]) for a in team.get("/whatsapp-accounts").json()] == [
        ("+972500000000", "amnon@acme.test"),
        ("+972500000001", "owner@acme.test"),
    ]
    other = service.workspace("Other", owner_email="boss@other.test")
    assert other.get("/whatsapp-accounts").json() == []
