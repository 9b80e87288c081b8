"""The kinds' pure functions: signatures as the senders compute them, ids, phones, times."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from chathooks.sources import bodies, evolution, waha, whatsapp_cloud
from chathooks.sources.fields import chat_id, phone, unix_time
from chathooks.sources.kinds import KINDS
from chathooks.sources.protocol import Kind, RawRequest
from chathooks.sources.screening import Refusal
from chathooks.store.models import Source
from chathooks.web.sources import setup_steps

NOW = datetime(2030, 3, 5, 10, 0, tzinfo=UTC)
SECRETS = {
    "app_secret": "s3cr3t",
    "verify_token": "vt",
    "hmac_key": "hk",
    "api_key": "ak",
    "auth_token": "at",
}
URL = "https://hooks.example/in/KEY"


def screened(
    kind: Kind, request: RawRequest, secrets: dict[str, str], piece: int = 7
) -> Refusal | None:
    """The kind's screen fed the raw body in small pieces (as it streams in), then the
    parsed body if the bytes pass."""
    screen = kind.screen(request.headers, secrets, url=request.url)
    for start in range(0, len(request.body), piece):
        screen.feed(request.body[start : start + piece])
    return screen.verdict() or screen.confirm(bodies.parsed(kind.WIRE, request.body))


def authentic(kind: Kind, request: RawRequest, secrets: dict[str, str]) -> bool:
    return screened(kind, request, secrets) is None


def test_waha_signature_matches_the_example_in_waha_docs() -> None:
    """The example of WAHA's "HMAC authentication" docs: body, key and X-Webhook-Hmac."""
    body = b'{"event":"message","session":"default","engine":"WEBJS"}'
    expected = (
        "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8"
        "097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89"
    )
    assert waha.signature("my-secret-key", body) == expected
    request = RawRequest({"x-webhook-hmac": expected.upper()}, body)
    assert authentic(waha, request, {"hmac_key": "my-secret-key"})
    assert not authentic(waha, request, {"hmac_key": "other-key"})


def test_meta_signature_is_over_the_raw_bytes_not_the_parsed_json() -> None:
    signed = whatsapp_cloud.sample(SECRETS, "m1", NOW, URL)
    assert authentic(whatsapp_cloud, signed, SECRETS)
    same_json = json.dumps(json.loads(signed.body)).encode()  # other spacing, same data
    assert not authentic(whatsapp_cloud, RawRequest(signed.headers, same_json), SECRETS)
    assert not authentic(whatsapp_cloud, signed, {**SECRETS, "app_secret": ""})
    weird = RawRequest({"x-hub-signature-256": "sha256=é\udcff"}, signed.body)
    assert not authentic(whatsapp_cloud, weird, SECRETS)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_sample_is_authentic_and_reads_as_one_message(name: str) -> None:
    kind = KINDS[name]
    request = kind.sample(SECRETS, "test_1", NOW, URL)
    body = bodies.parsed(kind.WIRE, request.body)
    assert authentic(kind, RawRequest(request.headers, request.body, url=URL), SECRETS)
    reading = kind.read(body)
    assert (len(reading.messages), reading.ignored, reading.rejected) == (1, 0, [])
    message = reading.messages[0]
    assert message["message_id"] == "test_1"
    assert message["whatsapp_account_phone"] == "+16505551111"
    assert message["sender"] == {"full_name": "test user name", "phone": "+16315551181"}
    assert message.get("timestamp", NOW) == NOW  # Twilio's are dated when they arrive


@pytest.mark.parametrize("name", sorted(KINDS))
def test_setup_steps_name_the_url_and_the_generated_secrets(name: str) -> None:
    source = Source(kind=name, secrets=SECRETS)
    steps = "\n".join(setup_steps(source, URL))
    assert f"<code>{URL}</code>" in steps
    for secret in KINDS[name].SECRETS:
        if secret.generated:
            assert f"<code>{SECRETS[secret.name]}</code>" in steps


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("972540000000", "+972540000000"),
        ("+1 650-555-1234", "+16505551234"),
        ("972540000000@c.us", "+972540000000"),
        ("972540000000@s.whatsapp.net", "+972540000000"),
        ("972540000000:12@s.whatsapp.net", "+972540000000"),
        ("123123123@lid", ""),
        ("120363025439817642@g.us", ""),
        ("status@broadcast", ""),
        ("١٢٣٤٥٦٧", ""),
        (972540000000, ""),
        ("", ""),
    ],
)
def test_phones_are_e164_with_a_plus(given: object, expected: str) -> None:
    assert phone(given) == expected


def test_chat_ids_are_written_as_waha_and_the_spec_do() -> None:
    assert chat_id("972540000000@s.whatsapp.net") == "972540000000@c.us"
    assert chat_id("972540000000:3@s.whatsapp.net") == "972540000000@c.us"
    assert chat_id("120363025439817642@g.us") == "120363025439817642@g.us"
    assert chat_id(None) == ""


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (1603059201, datetime(2020, 10, 18, 22, 13, 21, tzinfo=UTC)),
        ("1603059201", datetime(2020, 10, 18, 22, 13, 21, tzinfo=UTC)),
        (1710481111.853, datetime(2024, 3, 15, 5, 38, 31, tzinfo=UTC)),
        ("1e30", None),
        (-1, None),
        (True, None),
        ("soon", None),
        (None, None),
        (float("nan"), None),
    ],
)
def test_unix_times(given: object, expected: datetime | None) -> None:
    assert unix_time(given) == expected


def test_evolution_hidden_ids_use_the_phone_id_beside_them() -> None:
    body = {
        "event": "MESSAGES_UPSERT",
        "sender": "558196349077@s.whatsapp.net",
        "data": {
            "key": {
                "remoteJid": "187443017203787@lid",
                "remoteJidAlt": "558197088404@s.whatsapp.net",
                "fromMe": False,
                "id": "3EB0",
            },
            "pushName": "Maria",
            "message": {"ephemeralMessage": {"message": {"conversation": "oi"}}},
            "messageTimestamp": 1763771000,
        },
    }
    [message] = evolution.read(body).messages
    assert message["chat"]["external_id"] == "558197088404@c.us"
    assert message["chat"]["phone"] == "+558197088404"
    assert message["text"] == "oi"
    body["data"]["key"].pop("remoteJidAlt")  # type: ignore[attr-defined]
    [hidden] = evolution.read(body).messages
    assert (hidden["chat"]["external_id"], hidden["chat"]["phone"]) == ("187443017203787@lid", "")


def test_channels_statuses_and_notices_are_ignored() -> None:
    status = {"event": "message.any", "payload": {"from": "status@broadcast", "body": "x"}}
    notice = {"event": "message", "payload": {"from": "1@c.us", "_data": {"type": "revoked"}}}
    assert waha.read(status).ignored == 1
    assert waha.read(notice).ignored == 1
    assert whatsapp_cloud.read({"object": "page", "entry": []}).ignored == 1
    assert evolution.read({"event": "connection.update", "data": {}}).ignored == 1


def test_cloud_api_group_member_known_only_by_user_id() -> None:
    value = {
        "metadata": {"display_phone_number": "15550783881"},
        "contacts": [{"profile": {"name": "Sheena"}, "user_id": "US.1502576394655843"}],
        "messages": [
            {
                "from_user_id": "US.1502576394655843",
                "group_id": "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyODM2MzE",
                "id": "wamid.g1",
                "timestamp": "1775037600",
                "type": "text",
                "text": {"body": "Hello group"},
            },
            {
                "id": "wamid.nobody",
                "timestamp": "1775037600",
                "type": "text",
                "text": {"body": "?"},
            },
        ],
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"changes": [{"field": "messages", "value": value}]}],
    }
    reading = whatsapp_cloud.read(body)
    [message] = reading.messages
    assert message["chat"]["is_group"] is True
    assert message["sender"] == {"full_name": "Sheena", "phone": ""}
    assert reading.rejected == ["message 'wamid.nobody': no sender"]


def test_waha_engine_data_of_wrong_types_never_raises() -> None:
    """``_data`` is the engine's own message: any shape reads as "absent", never an error."""
    for raw in ([1], {"type": ["ptt"]}, {"message": ["audioMessage"]}, {"Info": "x"}):
        payload = {"from": "79111111111@c.us", "fromMe": True, "to": {"x": 1}, "hasMedia": True}
        payload |= {"timestamp": 1745913660, "id": "m", "_data": raw}
        body = {"event": "message.any", "me": {"id": "79222222222@c.us", "lid": []}}
        [message] = waha.read({**body, "payload": payload}).messages
        assert message["chat"]["external_id"] == "79111111111@c.us"
        assert message["attachments"][0]["type"] == "document"  # no type, no mimetype
    key = {"remoteJid": "1@lid", "remoteJidAlt": 5, "participantAlt": None}
    lost = {"event": "message.any", "payload": {"fromMe": True, "_data": {"key": key}}}
    assert waha.read(lost).ignored == 1  # no body, no media


def _reason(kind: Kind, headers: dict[str, str], body: bytes) -> str | None:
    refusal = screened(kind, RawRequest(headers, body), SECRETS)
    return None if refusal is None else refusal.reason


def test_a_refusal_names_what_is_wrong() -> None:
    cloud = whatsapp_cloud.sample(SECRETS, "m1", NOW, URL)
    signature = cloud.headers["x-hub-signature-256"]
    assert _reason(whatsapp_cloud, {}, cloud.body) == "signature_missing"
    sha1 = {"x-hub-signature-256": "sha1=" + signature.removeprefix("sha256=")}
    assert _reason(whatsapp_cloud, sha1, cloud.body) == "algorithm_unexpected"
    assert _reason(whatsapp_cloud, dict(cloud.headers), cloud.body + b" ") == "signature_wrong"

    hook = waha.sample(SECRETS, "m1", NOW, URL)
    assert _reason(waha, {}, hook.body) == "signature_missing"
    sha256 = {**hook.headers, "x-webhook-hmac-algorithm": "sha256"}
    assert _reason(waha, sha256, hook.body) == "algorithm_unexpected"
    assert _reason(waha, dict(hook.headers), hook.body + b" ") == "signature_wrong"
    assert _reason(waha, {"x-webhook-hmac": hook.headers["x-webhook-hmac"]}, hook.body) is None

    upsert = evolution.sample(SECRETS, "m1", NOW, URL)
    assert _reason(evolution, {}, upsert.body) is None
    assert _reason(evolution, {}, upsert.body.replace(b'"apikey"', b'"apiKey"')) == (
        "apikey_missing"
    )
    assert _reason(evolution, {}, upsert.body.replace(b'"ak"', b'"xx"')) == "apikey_wrong"
    # The key found in the bytes, but not as the top-level apikey: checked once parsed.
    elsewhere = json.loads(upsert.body)
    elsewhere["data"]["apikey"], elsewhere["apikey"] = elsewhere["apikey"], "xx"
    assert _reason(evolution, {}, json.dumps(elsewhere).encode()) == "apikey_wrong"
    del elsewhere["apikey"]
    assert _reason(evolution, {}, json.dumps(elsewhere).encode()) == "apikey_missing"


@pytest.mark.parametrize("piece", [1, 2, 3, 5, 8, 64, 100_000])
def test_an_apikey_split_across_chunks_is_found(piece: int) -> None:
    upsert = evolution.sample(SECRETS, "m1", NOW, URL)
    assert screened(evolution, upsert, SECRETS, piece) is None
