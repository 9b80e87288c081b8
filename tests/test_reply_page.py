"""Answering a customer from the chat page (issue 18) in a real Chromium, at desktop and
phone sizes: the reply goes out through a fake WAHA on 127.0.0.1 (answering as WAHA's code
does) as the logged-in teammate, its state follows live, a refused one says why and can be
retried, a chat that cannot send says where to set it up, and no one else can post."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from chathooks.store.models import Outgoing
from tests.browsing import (
    desktop_and_phone,
    needs_chromium,
    screenshot,
    set_password,
    sqlite_only,
)
from tests.conftest import Service, event, wait_for
from tests.fake_senders.waha import FakeWaha, unavailable
from tests.receiver import Receiver
from tests.test_send import FAST, Line, sent_deliveries

pytestmark = [needs_chromium, sqlite_only]
REFUSED = (
    "WAHA answered HTTP 422: Session status is not as expected. Try again later or restart "
    "the session (session status SCAN_QR_CODE)"
)


def _open_chat(page: Page, service: Service, line: Line) -> None:
    set_password(page, service, line.team)
    page.goto(f"{service.url}/chat/{line.chat_id}/messages/")


def _reply(page: Page, text: str) -> None:
    page.get_by_label("Your reply").fill(text)
    page.get_by_role("button", name="Send").click()


def _queued_count(service: Service) -> int:
    with service.rt.transaction() as session:
        return session.query(Outgoing).count()


def _csrf(page: Page) -> str:
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    return token


@desktop_and_phone
def test_a_reply_goes_out_once_as_the_teammate_and_its_state_follows_live(
    receiver: Receiver, waha: FakeWaha, start_service: Any, page: Page, viewport: str
) -> None:
    service = start_service(**FAST)
    line = Line(service, waha, receiver)
    _open_chat(page, service, line)
    box, send = page.get_by_label("Your reply"), page.get_by_role("button", name="Send")
    if viewport == "phone":  # the box spans the screen and the button is on it, big enough
        field, button = box.bounding_box(), send.bounding_box()
        assert field and button
        assert field["width"] >= 300 and button["x"] + button["width"] <= 390
        assert button["height"] >= 44
    form_token = page.locator("input[name=reply_token]").get_attribute("value")
    page.evaluate("window.samePage = true")  # gone if the page reloads

    _reply(page, "Thanks, your quote is attached")
    reply = page.locator("ol.replies li").last
    expect(reply).to_contain_text("Thanks, your quote is attached")
    expect(box).to_have_value("")  # a fresh form for the next reply, ready to type in
    expect(box).to_be_focused()
    expect(reply.locator(".badge")).to_have_text("sent")  # live: no reload
    expect(reply).to_contain_text("Olive Owner")
    expect(page.locator("#replies")).not_to_have_attribute("hx-trigger", "every 2s")
    assert page.evaluate("window.samePage") is True

    wait_for(lambda: line.source.log()[0]["outcome"] == "duplicate" or None, what="the echo")
    wait_for(lambda: sent_deliveries(receiver), what="the sent delivery")
    delivered = sent_deliveries(receiver)
    assert [m["text"] for m in delivered] == ["Thanks, your quote is attached"]
    assert delivered[0]["sender"]["full_name"] == "Olive Owner"
    assert waha.texts() == ["Thanks, your quote is attached"]

    # the same form posted again (a double-click, a resubmission) sends nothing more
    again = page.request.post(
        f"{service.url}/chat/{line.chat_id}/replies",
        form={
            "csrf_token": _csrf(page),
            "reply_token": form_token or "",
            "text": "Thanks, your quote is attached",
        },
        max_redirects=0,
    )
    assert again.status == 303
    assert _queued_count(service) == 1
    page.reload()
    expect(page.get_by_role("status")).to_have_text("Reply already queued.")
    expect(page.locator("ol.replies li")).to_have_count(1)
    # that form with its text changed (Back, edit, Send): kept, sent only when asked again
    page.locator("input[name=reply_token]").evaluate("(el, token) => el.value = token", form_token)
    _reply(page, "Thanks, your quote is attached (v2)")
    expect(page.get_by_role("alert")).to_have_text(
        "This form was sent before with another text: press Send again to send this one as "
        "a new reply."
    )
    assert _queued_count(service) == 1
    page.get_by_role("button", name="Send").click()
    expect(page.locator("ol.replies li")).to_have_count(2)
    expect(page.locator("ol.replies li").last.locator(".badge")).to_have_text("sent")
    assert waha.texts() == [
        "Thanks, your quote is attached",
        "Thanks, your quote is attached (v2)",
    ]
    wait_for(lambda: len(sent_deliveries(receiver)) == 2, what="the second sent delivery")
    assert [m["text"] for m in sent_deliveries(receiver)] == waha.texts()


@desktop_and_phone
def test_an_empty_or_too_long_reply_is_refused_and_kept(
    receiver: Receiver, waha: FakeWaha, start_service: Any, page: Page
) -> None:
    """On a phone too: a long reply without a space wraps, nothing reaches off the screen."""
    service = start_service(**FAST)
    line = Line(service, waha, receiver)
    _open_chat(page, service, line)
    _reply(page, "   ")
    expect(page.get_by_role("alert")).to_have_text("Write a reply first: the text is empty.")
    box = page.get_by_label("Your reply")
    expect(box).to_have_attribute("aria-invalid", "true")
    box.evaluate("el => el.removeAttribute('maxlength')")  # as an old browser would post it
    _reply(page, "x" * 4097)
    expect(page.get_by_role("alert")).to_have_text(
        "The reply is longer than 4,096 characters (WhatsApp's limit): shorten it or send it "
        "in parts."
    )
    expect(page.get_by_label("Your reply")).to_have_value("x" * 4097)
    assert _queued_count(service) == 0 and waha.calls == 0
    page.get_by_label("Your reply").fill("x" * 4096)  # the limit itself goes
    page.get_by_role("button", name="Send").dblclick()  # and goes once
    expect(page.locator("ol.replies li .badge")).to_have_text("sent")
    assert waha.texts() == ["x" * 4096] and _queued_count(service) == 1


@desktop_and_phone
def test_a_refused_reply_shows_the_senders_reason_and_retry_sends_it(
    receiver: Receiver, waha: FakeWaha, start_service: Any, page: Page, viewport: str
) -> None:
    service = start_service(**FAST)
    line = Line(service, waha, receiver)
    waha.status = "SCAN_QR_CODE"  # WAHA answers 422: the session is not working
    _open_chat(page, service, line)
    _reply(page, "Are you still there?")
    reply = page.locator("ol.replies li").last
    expect(reply.locator(".badge")).to_have_text("failed")
    expect(reply.locator(".reason")).to_have_text(REFUSED)
    assert waha.texts() == []
    if viewport == "phone":
        screenshot(page, "chat-reply-mobile")

    waha.status = "WORKING"  # the session was scanned again
    reply.get_by_role("button", name="Retry").click()
    expect(reply.locator(".badge")).to_have_text("sent")
    expect(reply.locator(".reason")).to_have_count(0)
    expect(reply.get_by_role("button", name="Retry")).to_have_count(0)
    assert waha.texts() == ["Are you still there?"]
    assert _queued_count(service) == 1

    # a second click on a Retry shown before the send went through retries nothing
    again = page.request.post(
        f"{service.url}/chat/{line.chat_id}/replies/{_only_id(service)}/retry",
        form={"csrf_token": _csrf(page)},
        max_redirects=0,
    )
    assert again.status == 303
    wait_for(lambda: sent_deliveries(receiver), what="the sent delivery")
    assert waha.texts() == ["Are you still there?"]


def test_a_reply_the_sender_cannot_take_yet_stays_queued_with_why_then_goes(
    receiver: Receiver, waha: FakeWaha, start_service: Any, page: Page
) -> None:
    service = start_service(**FAST)
    line = Line(service, waha, receiver)
    waha.script.append(unavailable())  # WAHA answers 503 once: tried again after a back-off
    _open_chat(page, service, line)
    _reply(page, "Hello again")
    reply = page.locator("ol.replies li").last
    expect(reply.locator(".reason")).to_contain_text("Will try again: WAHA answered HTTP 503")
    expect(reply.locator(".badge")).to_have_text("queued")
    expect(reply.get_by_role("button", name="Retry")).to_have_count(0)
    # while nothing changes, the page's poll answers 204 and leaves the page alone
    polled = page.locator("#replies").get_attribute("hx-get")
    assert polled and page.request.get(service.url + polled).status == 204
    service.clock.advance(5)  # past the back-off
    expect(reply.locator(".badge")).to_have_text("sent")
    expect(reply.locator(".reason")).to_have_count(0)
    expect(page.get_by_role("status")).to_have_count(0)  # "Reply queued." went with it
    assert waha.texts() == ["Hello again"]


def _only_id(service: Service) -> int:
    with service.rt.transaction() as session:
        return session.query(Outgoing.id).one()[0]


def test_a_chat_that_cannot_send_says_why_and_where_to_set_it_up(
    receiver: Receiver, waha: FakeWaha, start_service: Any, page: Page
) -> None:
    service = start_service(**FAST)
    line = Line(service, waha, receiver, api_url=None)
    _open_chat(page, service, line)
    note = page.locator("#reply").get_by_role("note")
    expect(note).to_have_text(
        "This chat cannot be answered from here: the account's source 'waha line' has no "
        "sending credentials: set its API base URL on the source's page to send through WAHA. "
        "Open the source's page"
    )
    expect(page.get_by_label("Your reply")).to_have_count(0)
    expect(page.get_by_role("button", name="Send")).to_have_count(0)
    posted = page.request.post(
        f"{service.url}/chat/{line.chat_id}/replies",
        form={"csrf_token": _csrf(page), "reply_token": "a" * 24, "text": "hello"},
        max_redirects=0,
    )
    assert posted.status == 422
    assert _queued_count(service) == 0 and waha.calls == 0
    note.get_by_role("link", name="Open the source's page").click()
    expect(page).to_have_url(f"{service.url}/whatsapp/sources/{line.source.source['id']}")

    # a chat that came through the API has no source at all
    line.team.account()
    assert line.team.post("/messages", event("api-1")).status_code == 202
    api_chat = [c for c in line.team.get("/chats").json()["chats"] if c["chat_id"] != line.chat_id]
    page.goto(f"{service.url}/chat/{api_chat[0]['chat_id']}/messages/")
    expect(page.locator("#reply").get_by_role("note")).to_contain_text(
        "has no source to send through"
    )
    page.get_by_role("link", name="Open the WhatsApp sources").click()
    expect(page).to_have_url(f"{service.url}/whatsapp/sources")


def test_only_the_chats_workspace_sees_and_posts_replies(
    receiver: Receiver, waha: FakeWaha, start_service: Any, page: Page
) -> None:
    service = start_service(**FAST)
    line = Line(service, waha, receiver)
    _open_chat(page, service, line)
    form = {"csrf_token": "", "reply_token": "b" * 24, "text": "no token"}
    refused = page.request.post(
        f"{service.url}/chat/{line.chat_id}/replies", form=form, max_redirects=0
    )
    assert refused.status == 403  # no CSRF token: refused before anything is queued
    ours = line.send("ours")  # through the API

    other = service.workspace("Other", "owner@other.test")
    set_password(page, service, other)
    form["csrf_token"] = _csrf(page)
    answer = page.goto(f"{service.url}/chat/{line.chat_id}/messages/")
    assert answer is not None and answer.status == 404
    base = f"{service.url}/chat/{line.chat_id}/replies"
    assert page.request.post(base, form=form, max_redirects=0).status == 404
    assert page.request.get(base).status == 404
    retried = page.request.post(f"{base}/{ours['id']}/retry", form=form, max_redirects=0)
    assert retried.status == 404
    wait_for(lambda: line.outgoing(ours["id"])["status"] == "sent", what="our send")
    assert _queued_count(service) == 1 and waha.texts() == ["ours"]
