"""WhatsApp through Twilio (issue 19): signed as Twilio signs, over the public URL; form
bodies in the exact parameter sets Twilio posts; one message per request, stored once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from chathooks.sources import bodies, twilio
from chathooks.sources.protocol import RawRequest
from tests.browsing import PASSWORD
from tests.conftest import Service, Workspace, free_port, wait_for
from tests.receiver import Receiver
from tests.test_sources import OWNER, chat, stored_messages, team_on_its_own_url

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources" / "twilio"
PUBLIC = "https://hooks.acme.example"
"""A proxied https URL: the service itself listens on plain http on 127.0.0.1."""
AUTH_TOKEN = "f3a1c0de9b8e7f60a1b2c3d4e5f60718"
SHARED_KEY = "sk_8Qm2Lr7Vt0Xc5Zp1Hn4Jw6Ky9Bd3Fg"
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
ZERO = {"stored": 0, "duplicates": 0, "ignored": 0, "rejected": 0}


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.form").read_bytes()


def twilio_signature(key: str, url: str, body: bytes, digest: Any = hashlib.sha1) -> str:
    """Written apart from the kind's: Twilio's rule read off its security docs."""
    pairs = sorted(parse_qsl(body.decode(), keep_blank_values=True))
    signed = url + "".join(name + value for name, value in pairs)
    return base64.b64encode(hmac.new(key.encode(), signed.encode(), digest).digest()).decode()


class TwilioSender:
    """A team's Twilio source, and Twilio posting to it through a proxy that hands on its
    own idea of the URL (http, another host), as proxies do."""

    def __init__(self, team: Workspace, **secrets: str) -> None:
        answer = team.post(
            "/sources",
            {
                "kind": "twilio",
                "name": "Twilio line",
                "secrets": {"auth_token": AUTH_TOKEN, **secrets},
            },
        )
        assert answer.status_code == 201, answer.text
        self.team, self.source = team, answer.json()
        self.path = urlsplit(self.source["url"]).path

    def post(
        self, body: bytes, *, signed_for: str = "", query: str = "", key: str = AUTH_TOKEN
    ) -> httpx.Response:
        url = self.source["url"] + (f"?{query}" if query else "")
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(key, signed_for or url, body),
            "X-Forwarded-Proto": "http",
            "X-Forwarded-Host": "10.0.0.7:8000",
        }
        target = self.path + (f"?{query}" if query else "")
        return self.team.service.http.post(target, content=body, headers=headers)

    def deliver(self, name: str, **expected: int) -> None:
        answer = self.post(fixture(name))
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/xml")
        assert answer.text == TWIML
        assert self.counts() == {**ZERO, **expected}

    def counts(self) -> dict[str, int]:
        found = self.team.get(f"/sources/{self.source['id']}").json()
        return {k: found[k] for k in ZERO}

    def log(self) -> list[tuple[int, str]]:
        answer = self.team.get(f"/sources/{self.source['id']}/requests")
        return [(r["status_code"], r["outcome"]) for r in answer.json()]


@pytest.fixture
def proxied(start_service: Callable[..., Service]) -> Service:
    return start_service(public_base_url=PUBLIC)


def authentic(request: RawRequest, secrets: dict[str, str]) -> bool:
    """Through the kind's screen, as ``/in/{key}`` runs it: headers, bytes, parsed form."""
    screen = twilio.screen(request.headers, secrets, url=request.url)
    screen.feed(request.body)
    return (screen.verdict() or screen.confirm(bodies.parsed(twilio.WIRE, request.body))) is None


def test_the_signature_is_twilios_documented_example() -> None:
    """Twilio's security docs: this URL, these parameters, Auth Token 12345."""
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    expected = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    fields = {name: [value] for name, value in params.items()}
    assert twilio.signature("12345", url, fields) == expected
    body = urlencode(sorted(params.items(), reverse=True)).encode()  # not in signing order

    def request(signature: str, to: str = url, form: bytes = body) -> RawRequest:
        return RawRequest({"x-twilio-signature": signature}, form, url=to)

    secrets = {"auth_token": "12345"}
    assert authentic(request(expected), secrets)
    assert not authentic(request(expected), {"auth_token": "12346"})
    tampered = body.replace(b"1234&", b"1235&")
    assert not authentic(request(expected, form=tampered), secrets)
    assert not authentic(request(expected, to=url.replace("bar=2", "bar=3")), secrets)
    for other in ("http://mycompany.com/myapp.php", "https://mycompany.com:8443/myapp.php"):
        signed_elsewhere = twilio_signature("12345", other + "?foo=1&bar=2", body)
        assert not authentic(request(signed_elsewhere), secrets), other
    # As Twilio's validators do, the URL is also tried with the scheme's default port
    # written out, and without its port (Twilio's signing is not consistent about ports).
    with_port = twilio_signature("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", body)
    assert authentic(request(with_port), secrets)
    on_8443 = "https://mycompany.com:8443/myapp.php?foo=1&bar=2"
    assert authentic(request(expected, to=on_8443), secrets)
    assert not authentic(request(""), secrets)
    assert not authentic(request(expected), {"auth_token": ""})


def test_a_webhooks_rule_signs_with_its_shared_key_and_hmac_sha256() -> None:
    url = "https://hooks.acme.example/in/KEY"
    body = fixture("text_received")
    sha256 = twilio_signature(SHARED_KEY, url, body, hashlib.sha256)
    settings = {"x-twilio-webhooks-signature-settings": "key=KSb2c3d4e5,algorithm=HMAC_SHA256"}
    request = RawRequest({**settings, "x-twilio-signature": sha256}, body, url=url)
    assert authentic(request, {"auth_token": AUTH_TOKEN, "shared_key": SHARED_KEY})
    assert not authentic(request, {"auth_token": AUTH_TOKEN, "shared_key": ""})
    assert not authentic(request, {"auth_token": SHARED_KEY, "shared_key": "other"})
    unsigned_settings = RawRequest({"x-twilio-signature": sha256}, body, url=url)
    assert not authentic(unsigned_settings, {"auth_token": SHARED_KEY})
    unknown = {"x-twilio-webhooks-signature-settings": "key=KSb2c3d4e5,algorithm=HMAC_MD5"}
    assert not authentic(
        RawRequest({**unknown, "x-twilio-signature": sha256}, body, url=url),
        {"auth_token": AUTH_TOKEN, "shared_key": SHARED_KEY},
    )


def read(name: str) -> Any:
    return twilio.read(bodies.parsed(twilio.WIRE, fixture(name)))


def test_fixtures_read_as_twilio_documents_them() -> None:
    [text] = read("text_received").messages
    assert text["whatsapp_account_phone"] == "+14155238886"
    assert text["chat"] == {
        "external_id": "5511987654321@c.us",
        "full_name": "Ana Souza",
        "is_group": False,
        "phone": "+5511987654321",
    }
    assert text["message_id"] == "SM5e1f0c9a2b3d4e5f60718293a4b5c6d7"
    assert (text["direction"], text["text"]) == ("received", "Olá! Do you ship to São Paulo?")
    assert "timestamp" not in text  # Twilio does not say: dated when it arrives
    [image] = read("image_caption").messages
    assert image["text"] == "The box arrived like this"
    assert image["attachments"] == [
        {
            "type": "image",
            "mime_type": "image/jpeg",
            "url": "https://api.twilio.com/2010-04-01/Accounts/AC0a1b2c3d4e5f60718293a4b5c6d7e8f9"
            "/Messages/MM7c2d9e0f1a2b3c4d5e6f708192a3b4c5/Media/ME0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        }
    ]
    [location] = read("location").messages
    assert (location["text"], location["attachments"]) == (
        "",
        [
            {
                "type": "location",
                "latitude": "-23.561414",
                "longitude": "-46.655881",
                "address": "Av. Paulista, 1578 - Bela Vista, São Paulo",
                "label": "MASP",
            }
        ],
    )
    [button] = read("button_reply").messages
    assert (button["text"], button["attachments"]) == ("Yes, deliver tomorrow", [])
    status = read("status_callback")
    assert (status.messages, status.ignored, status.rejected) == ([], 1, [])
    [hidden] = read("username_received").messages
    assert hidden["chat"] == {
        "external_id": "BR.1502576394655843",
        "full_name": "ana.sp",
        "is_group": False,
        "phone": "",
    }
    assert hidden["sender"] == {"full_name": "ana.sp", "phone": ""}


def test_twilio_messages_arrive_through_the_public_url(
    proxied: Service, receiver: Receiver
) -> None:
    team = proxied.workspace()
    team.webhook(receiver.url)
    sender = TwilioSender(team)
    assert sender.source["url"].startswith(f"{PUBLIC}/in/")
    sender.deliver("text_received", stored=1)
    body = wait_for(receiver.bodies, what="the delivery")[0]
    assert body == {
        "whatsapp_account": {**OWNER, "phone": "+14155238886"},
        "chat": {
            **chat(body["chat"]["chat_id"], "Ana Souza", "+5511987654321", new=True),
            "chat_url": f"{PUBLIC}/chat/{body['chat']['chat_id']}/messages/",
        },
        "message": {
            "direction": "received",
            "timestamp": proxied.clock.now().strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "message_id": "SM5e1f0c9a2b3d4e5f60718293a4b5c6d7",
            "sender": {"full_name": "Ana Souza", "phone": "+5511987654321"},
            "recipient": {"full_name": "Olive Owner", "phone": "+14155238886"},
            "text": "Olá! Do you ship to São Paulo?",
        },
    }
    # Twilio retries (connection overrides): the same MessageSid is a duplicate.
    sender.deliver("text_received", stored=1, duplicates=1)
    sender.deliver("status_callback", stored=1, duplicates=1, ignored=1)
    sender.deliver("button_reply", stored=2, duplicates=1, ignored=1)
    sender.deliver("image_caption", stored=3, duplicates=1, ignored=1)  # stored, not sent
    sender.deliver("username_received", stored=4, duplicates=1, ignored=1)
    wait_for(lambda: len(receiver.requests) == 3, what="three deliveries")
    sent = {b["message"]["text"]: b for b in receiver.bodies()}
    assert sorted(sent) == [
        "Hi, it's Ana again",
        "Olá! Do you ship to São Paulo?",
        "Yes, deliver tomorrow",
    ]
    hidden = sent["Hi, it's Ana again"]
    assert (hidden["chat"]["full_name"], hidden["chat"]["phone"]) == ("ana.sp", "")
    assert stored_messages(proxied) == 4


def test_a_signature_for_another_url_is_refused(proxied: Service, receiver: Receiver) -> None:
    sender = TwilioSender(proxied.workspace())
    body = fixture("text_received")
    url = sender.source["url"]
    assert url.startswith("https://")
    others = {
        "http instead of https": "http" + url.removeprefix("https"),
        "another port": url.replace(PUBLIC, f"{PUBLIC}:8443"),
        "the proxy's view": f"http://10.0.0.7:8000{sender.path}",
        "another path": url + "x",
    }
    for name, other in others.items():
        answer = sender.post(body, signed_for=other)
        assert answer.status_code == 401, (name, answer.text)
        proxied.clock.advance(1)  # refusals are logged at most once a second per source
    assert sender.post(body, key="not-the-auth-token").status_code == 401
    proxied.clock.advance(1)
    assert sender.post(b"Body=%ff", signed_for=url).status_code == 400
    assert stored_messages(proxied) == 0
    assert sender.counts() == ZERO
    assert sender.log() == [(400, "not_form")] + [(401, "unauthorized")] * 5
    # The query string is part of the signed URL, as Twilio calls it.
    assert sender.post(body, query="team=sales&x=%2F").status_code == 200
    assert sender.counts() == {**ZERO, "stored": 1}


def test_odd_forms_never_cause_a_500(service: Service) -> None:
    sender = TwilioSender(service.workspace())
    odd = [
        b"",
        b"From=whatsapp%3A%2B5511987654321",
        b"From=whatsapp%3A%2B5511987654321&To=whatsapp%3Anobody&Body=hi&MessageSid=SM1",
        b"From=whatsapp%3Afoo&Body=x&MessageSid=SM2&To=whatsapp%3A%2B14155238886",
        b"From=%2B5511987654321&To=%2B14155238886&Body=an+SMS&MessageSid=SM3",
        b"From=whatsapp%3A%2B5511987654321&To=whatsapp%3A%2B14155238886&NumMedia=99999999999"
        b"&MediaUrl0=x&Body=&MessageSid=SM4",
        b"From=whatsapp%3A%2B5511987654321&To=whatsapp%3A%2B14155238886&NumMedia=-3&Body="
        b"&Latitude=1&MessageSid=SM5",
        b"From=whatsapp%3A%2B5511987654321&To=whatsapp%3A%2B14155238886&Body=%00&MessageSid="
        + b"S" * 300,
        b"&".join(b"Field%d=%d" % (i, i) for i in range(5000)),
        b"%%%=&&=",
    ]
    for body in odd:
        answer = sender.post(body)
        assert answer.status_code in (200, 400), (body[:80], answer.status_code, answer.text)
    # SM4 is stored (media without text); SM1 (no business number), SM2 (no phone, no
    # BSUID) and the NUL text with a 300-character id are rejected.
    assert sender.counts() == {"stored": 1, "duplicates": 0, "ignored": 5, "rejected": 3}


def test_send_sample_signs_for_the_public_url(
    start_service: Callable[..., Service], receiver: Receiver
) -> None:
    team = team_on_its_own_url(start_service, receiver)
    sender = TwilioSender(team)
    result = team.post(f"/sources/{sender.source['id']}/sample", {}).json()
    assert (result["success"], result["status"], result["body"]) == (True, 200, TWIML), result
    assert sender.counts() == {**ZERO, "stored": 1}
    body = wait_for(receiver.bodies, what="the sample")[0]
    assert body["message"]["message_id"].startswith("test_")
    assert body["chat"]["full_name"] == "test user name"


def test_the_page_shows_the_url_and_twilios_steps(
    start_service: Callable[..., Service], page: Page
) -> None:
    port = free_port()
    service = start_service(port=port, public_base_url=f"http://127.0.0.1:{port}")
    team = service.workspace()
    page.goto(team.created["owner_password_link"])
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Repeat it").fill(PASSWORD)
    page.get_by_role("button", name="Set password and log in").click()
    page.goto(service.url + "/whatsapp/sources")
    page.get_by_label("Kind").select_option(label="Twilio (WhatsApp)")
    expect(page.locator("#secret_app_secret")).to_be_hidden()
    page.get_by_label("Name").fill("Twilio line")
    page.locator("#secret_auth_token").fill(AUTH_TOKEN)  # the SharedKey stays empty
    page.get_by_role("button", name="Create source").click()
    expect(page).to_have_url(re.compile(r"/whatsapp/sources/\d+$"))

    [source] = team.get("/sources").json()
    assert source["secrets"] == {
        "auth_token": AUTH_TOKEN,
        "shared_key": "",
        "account_sid": "",
        "sender": "",
        "api_url": "",
    }
    expect(page.locator("#source-url")).to_have_value(source["url"])
    steps = page.locator("ol.steps")
    expect(steps).to_contain_text(source["url"])
    expect(steps).to_contain_text("Webhook URL for incoming messages")
    expect(steps).to_contain_text("Twilio does not post the messages the business sends")
    expect(page.locator("#secret_shared_key")).to_have_attribute(
        "placeholder", "not set (optional)"
    )
    page.get_by_role("button", name="Send sample").click()
    expect(page.locator("#sample-result")).to_contain_text("HTTP 200")
    expect(page.locator('[data-count="stored"]')).to_have_text("1")
    page.locator("#requests .req.stored summary").click()
    expect(page.locator("#requests .req.stored")).to_contain_text("x-twilio-signature")
