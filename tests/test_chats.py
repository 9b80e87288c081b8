"""GET /api/v1/chats: the workspace's chats by their latest message, newest first, found
by name or phone, a page at a time, each leading to its chat page."""

from __future__ import annotations

from typing import Any

from tests.conftest import PUBLIC_BASE, Service, Workspace, event


def _chat(team: Workspace, number: int, name: str, minute: int, **extra: Any) -> str:
    """A message at 10:<minute> in the chat with +97254000000<number>; its chat id."""
    answer = team.post(
        "/messages",
        event(
            f"m-{number}-{minute}",
            chat=f"97254000000{number}@c.us",
            chat_name=name,
            phone=f"+97254000000{number}",
            timestamp=f"2024-05-01T10:{minute:02d}:00Z",
            **extra,
        ),
    )
    assert answer.status_code in (200, 202), answer.text
    return str(answer.json()["chat_id"])


def _names(team: Workspace, **params: Any) -> list[str]:
    answer = team.get("/chats", params=params)
    assert answer.status_code == 200, answer.text
    return [chat["full_name"] for chat in answer.json()["chats"]]


def test_chats_come_newest_message_first_each_with_its_page(service: Service) -> None:
    team = service.workspace()
    team.account()
    dana = _chat(team, 1, "Dana Levi", 1)
    _chat(team, 2, "Yossi Cohen", 2)
    _chat(team, 3, "Acme group", 3, is_group=True)
    assert _names(team) == ["Acme group", "Yossi Cohen", "Dana Levi"]

    # A new message moves its chat to the top; one sent earlier, arriving late, does not.
    _chat(team, 1, "Dana Levi", 9)
    _chat(team, 2, "Yossi Cohen", 0)
    assert _names(team) == ["Dana Levi", "Acme group", "Yossi Cohen"]

    team.patch(f"/chats/{dana}", {"responsible_email": "amnon@acme.test"})
    first = team.get("/chats").json()["chats"][0]
    assert first == {
        "chat_id": dana,
        "full_name": "Dana Levi",
        "is_group": False,
        "phone": "+972540000001",
        "whatsapp_account_phone": "+972500000000",
        "responsible_name": "Amnon Haha",
        "responsible_email": "amnon@acme.test",
        "chat_url": f"{PUBLIC_BASE}/chat/{dana}/messages/",
        "last_message_at": "2024-05-01T10:09:00Z",
    }
    one = team.get(f"/chats/{dana}").json()
    assert first == {**one, "last_message_at": "2024-05-01T10:09:00Z"}

    # Another workspace sees only its own.
    other = service.workspace("Other", "owner@other.test")
    assert other.get("/chats").json() == {"chats": [], "next_cursor": None}


def test_search_by_name_or_phone(service: Service) -> None:
    team = service.workspace()
    team.account()
    _chat(team, 1, "Dana Levi", 1)
    _chat(team, 2, "Yossi Cohen", 2)
    _chat(team, 3, "100% _real_ customer", 3)
    assert _names(team, q="dana") == ["Dana Levi"]
    assert _names(team, q="  COHEN ") == ["Yossi Cohen"]
    assert _names(team, q="+972540000002") == ["Yossi Cohen"]
    assert _names(team, q="+972 54-000-0001") == ["Dana Levi"]
    assert _names(team, q="97254") == ["100% _real_ customer", "Yossi Cohen", "Dana Levi"]
    # % and _ are letters here, not patterns.
    assert _names(team, q="100%") == ["100% _real_ customer"]
    assert _names(team, q="_") == ["100% _real_ customer"]
    assert _names(team, q="nobody") == []


def test_pages_follow_the_cursor_to_the_end_without_repeats(service: Service) -> None:
    team = service.workspace()
    team.account()
    for number in range(1, 6):
        _chat(team, number, f"Contact {number}", number)
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    pages = 0
    while True:
        answer = team.get("/chats", params=params).json()
        pages += 1
        seen += [chat["full_name"] for chat in answer["chats"]]
        if pages == 1:  # a chat on a later page gets a message meanwhile
            _chat(team, 1, "Contact 1", 30)
        if answer["next_cursor"] is None:
            break
        params["cursor"] = answer["next_cursor"]
    assert seen == ["Contact 5", "Contact 4", "Contact 3", "Contact 2"]
    assert pages == 2
    assert _names(team, limit=1) == ["Contact 1"]
    # Chats whose latest messages share a timestamp are each listed once.
    for number in range(6, 9):
        _chat(team, number, f"Contact {number}", 40)
    tied = [team.get("/chats", params={"limit": 1}).json()]
    while tied[-1]["next_cursor"]:
        tied.append(
            team.get("/chats", params={"limit": 1, "cursor": tied[-1]["next_cursor"]}).json()
        )
    assert [page["chats"][0]["full_name"] for page in tied] == [
        "Contact 8",
        "Contact 7",
        "Contact 6",
        "Contact 1",
        "Contact 5",
        "Contact 4",
        "Contact 3",
        "Contact 2",
    ]
    # Searching pages too.
    first = team.get("/chats", params={"q": "contact", "limit": 3}).json()
    rest = team.get("/chats", params={"q": "contact", "cursor": first["next_cursor"]}).json()
    assert len(first["chats"]) == 3 and len(rest["chats"]) == 5 and rest["next_cursor"] is None


def test_bad_paging_is_a_422_naming_the_parameter(service: Service) -> None:
    team = service.workspace()
    for params, name in (
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"q": "x" * 201}, "q"),
        ({"q": "a\x00b"}, "q"),
    ):
        answer = team.get("/chats", params=params)
        assert answer.status_code == 422, params
        assert answer.json()["detail"][0]["loc"] == ["query", name]
    assert service.http.get("/api/v1/chats").status_code == 401
