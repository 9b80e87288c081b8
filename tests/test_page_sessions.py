"""Page sessions live on the server: logging out ends this one (a copied cookie stops
working), a new password ends all of the teammate's, and none outlives 14 days."""

from __future__ import annotations

import httpx

from chathooks.logins import set_password as set_new_password
from chathooks.store import tenants
from tests.conftest import Service
from tests.pages import PASSWORD, browser, csrf_of, is_logged_in, log_in, set_password

OWNER = "owner@acme.test"


def _copy(service: Service, client: httpx.Client) -> httpx.Client:
    """Another browser with a copy of this one's cookies (a stolen cookie)."""
    thief = browser(service)
    thief.cookies = httpx.Cookies(client.cookies)
    return thief


def test_logout_ends_the_session_for_every_copy_of_the_cookie(service: Service) -> None:
    team = service.workspace()
    client = browser(service)
    set_password(service, team, client)
    thief = _copy(service, client)
    assert is_logged_in(thief)

    answer = client.post("/logout", data={"csrf_token": csrf_of(client, "/webhooks/outbound")})
    assert answer.status_code == 303
    assert not is_logged_in(client)
    assert not is_logged_in(thief), "a cookie copied before logout must stop working"


def test_a_new_password_ends_every_session_of_that_teammate_only(service: Service) -> None:
    team = service.workspace()
    other = service.workspace("Other", "other@acme.test")
    first, second, bystander = browser(service), browser(service), browser(service)
    set_password(service, team, first)
    assert log_in(second, OWNER).status_code == 303
    set_password(service, other, bystander)

    with service.rt.transaction() as session:
        [owner] = tenants.teammates_by_email_anywhere(session, OWNER)
        set_new_password(session, owner, "a brand new password")

    assert not is_logged_in(first)
    assert not is_logged_in(second)
    assert is_logged_in(bystander)
    assert log_in(second, OWNER, PASSWORD).status_code == 401
    assert log_in(second, OWNER, "a brand new password").status_code == 303


def test_a_session_ends_after_14_days(service: Service) -> None:
    team = service.workspace()
    client = browser(service)
    set_password(service, team, client)
    thief = _copy(service, client)
    service.clock.advance(13 * 24 * 3600)
    assert is_logged_in(client)
    service.clock.advance(24 * 3600)
    assert not is_logged_in(client)
    assert not is_logged_in(thief)
