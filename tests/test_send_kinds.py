"""Each kind's sending part (``Sender``: pure functions) against real answers: its calls go
through chathooks' guarded transport to a fake sender on 127.0.0.1 that answers as the
sender's code and documentation say, and the kind reads what came back."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs

from chathooks.deliver.transport import AiohttpTransport, Outcome
from chathooks.sources import evolution, twilio, waha, whatsapp_cloud
from chathooks.sources.kinds import SENDERS
from chathooks.sources.protocol import Call, CheckAnswer, Reply, SendAnswer, SendReport, Template
from chathooks.states import SourceKind
from tests.conftest import run_coroutine
from tests.fake_senders.evolution import FakeEvolution
from tests.fake_senders.fixtures import (
    EVOLUTION_KEY,
    META_TOKEN,
    NUMBER_ID,
    TWILIO_SENDER,
    TWILIO_SID,
    TWILIO_TOKEN,
)
from tests.fake_senders.server import FakeServer
from tests.fake_senders.twilio import FakeTwilio, status_callback
from tests.fake_senders.whatsapp_cloud import DETAILS_131047, FakeGraph, failed_status

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources"
CUSTOMER = Reply("5511987654321@c.us", "+5511987654321", False, "Your quote is attached")


def called(server: FakeServer, call: Call, *, allowed: bool = True) -> Outcome:
    """The call made through the transport chathooks sends with, which allows this fake's
    loopback address only as ``CHATHOOKS_SENDER_HOSTS`` would."""

    async def go() -> Outcome:
        allowed_hosts = [f"127.0.0.1:{server.port}"] if allowed else []
        transport = AiohttpTransport(
            allow_private=False,
            connect_timeout=5,
            total_timeout=10,
            connections=2,
            allowed_hosts=allowed_hosts,
        )
        try:
            return await transport.request(call.method, call.url, dict(call.headers), call.body)
        finally:
            await transport.close()

    return run_coroutine(go())


def evolution_secrets(server: FakeServer, **changed: str) -> dict[str, str]:
    return {"api_url": server.url + "/", "api_key": EVOLUTION_KEY, "instance": "sales", **changed}


def cloud_secrets(server: FakeServer, **changed: str) -> dict[str, str]:
    secrets = {"app_secret": "x" * 32, "access_token": META_TOKEN, "phone_number_id": NUMBER_ID}
    return {**secrets, "api_url": server.url, **changed}


def test_evolution_and_the_cloud_api_are_senders_with_their_pace() -> None:
    assert SENDERS[SourceKind.EVOLUTION] is evolution
    assert SENDERS[SourceKind.WHATSAPP_CLOUD] is whatsapp_cloud
    assert SENDERS[SourceKind.TWILIO] is twilio
    assert (evolution.PER_SECOND, whatsapp_cloud.PER_SECOND) == (1.0, 20.0)


def test_evolution_sends_v2s_text_body_and_reads_the_message_id(
    fake_evolution: FakeEvolution,
) -> None:
    secrets = evolution_secrets(fake_evolution)
    outcome = called(fake_evolution, evolution.send_call(secrets, CUSTOMER))
    [call] = fake_evolution.calls
    assert (call.method, call.path) == ("POST", "/message/sendText/sales")
    assert call.headers["apikey"] == EVOLUTION_KEY
    assert call.json == {"number": "5511987654321", "text": "Your quote is attached"}
    assert outcome.status == 201
    sent_id = json.loads(outcome.body)["key"]["id"]
    assert evolution.read_send(outcome.status, outcome.body) == SendAnswer("sent", sent_id)

    group = Reply("120363040000000000@g.us", "", True, "Hello team")
    called(fake_evolution, evolution.send_call(secrets, group))
    assert fake_evolution.calls[-1].json["number"] == "120363040000000000@g.us"


def test_evolution_refusals_in_words_and_a_dropped_connection_is_retried(
    fake_evolution: FakeEvolution,
) -> None:
    secrets = evolution_secrets(fake_evolution)

    def sent(reply: Reply = CUSTOMER, **changed: str) -> SendAnswer:
        outcome = called(fake_evolution, evolution.send_call({**secrets, **changed}, reply))
        assert outcome.status is not None, outcome.error
        return evolution.read_send(outcome.status, outcome.body)

    fake_evolution.not_on_whatsapp.add("5511987654321")
    assert sent() == SendAnswer(
        "failed", error="Evolution answered 400: 5511987654321 is not on WhatsApp."
    )
    fake_evolution.not_on_whatsapp.clear()
    fake_evolution.connection_closed = True
    assert sent() == SendAnswer("retry", error="Evolution answered 400: Error: Connection Closed.")
    fake_evolution.connection_closed = False
    wrong_key = sent(api_key="0" * 32)
    assert wrong_key.outcome == "failed" and "refused the API key (401" in wrong_key.error
    assert sent(instance="support") == SendAnswer(
        "failed", error='Evolution answered 404: The "support" instance does not exist.'
    )


def test_evolution_check_reads_the_connection_state(fake_evolution: FakeEvolution) -> None:
    secrets = evolution_secrets(fake_evolution)

    def checked(**changed: str) -> tuple[bool, str]:
        outcome = called(fake_evolution, evolution.check_call({**secrets, **changed}))
        assert outcome.status is not None, outcome.error
        answer = evolution.read_check(outcome.status, outcome.body)
        return answer.ok, answer.words

    assert fake_evolution.calls == [] and checked() == (
        True,
        "Instance 'sales' is connected to WhatsApp: chathooks can send.",
    )
    assert fake_evolution.calls[0].path == "/instance/connectionState/sales"
    fake_evolution.state = "close"
    ok, words = checked()
    assert not ok and "disconnected from WhatsApp" in words and "QR code" in words
    ok, words = checked(api_key="0" * 32)
    assert not ok and words.startswith("Evolution refused the API key (401 Unauthorized)")


def test_cloud_api_sends_text_and_templates_and_reads_the_wamid(graph: FakeGraph) -> None:
    secrets = cloud_secrets(graph)
    outcome = called(graph, whatsapp_cloud.send_call(secrets, CUSTOMER))
    [call] = graph.calls
    assert (call.method, call.path) == ("POST", f"/v23.0/{NUMBER_ID}/messages")
    assert call.headers["authorization"] == f"Bearer {META_TOKEN}"
    assert call.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "5511987654321",
        "type": "text",
        "text": {"preview_url": False, "body": "Your quote is attached"},
    }
    wamid = json.loads(outcome.body)["messages"][0]["id"]
    assert wamid.startswith("wamid.")
    assert outcome.status is not None
    assert whatsapp_cloud.read_send(outcome.status, outcome.body) == SendAnswer("sent", wamid)

    template = Template("quote_ready", "pt_BR", ("Ana", "Q-1042"))
    reply = Reply(CUSTOMER.chat_external_id, CUSTOMER.phone, False, "", template)
    outcome = called(graph, whatsapp_cloud.send_call(secrets, reply))
    assert graph.calls[-1].json["template"] == {
        "name": "quote_ready",
        "language": {"code": "pt_BR"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "Q-1042"}],
            }
        ],
    }
    assert outcome.status is not None
    assert whatsapp_cloud.read_send(outcome.status, outcome.body).outcome == "sent"


def test_cloud_api_24_hour_refusal_says_what_to_do(graph: FakeGraph) -> None:
    graph.window_closed.add("5511987654321")
    outcome = called(graph, whatsapp_cloud.send_call(cloud_secrets(graph), CUSTOMER))
    assert outcome.status == 400
    answer = whatsapp_cloud.read_send(outcome.status, outcome.body)
    assert answer.outcome == "failed"
    assert answer.error.startswith(
        f"Meta refused it (error 131047): (#131047) Re-engagement message. {DETAILS_131047} "
    )
    assert "24-hour customer-service window is closed" in answer.error
    assert "Send an approved message template instead" in answer.error


def test_cloud_api_rate_limits_are_retried_and_other_errors_fail_in_words(
    graph: FakeGraph,
) -> None:
    secrets = cloud_secrets(graph)

    def sent(**changed: str) -> SendAnswer:
        outcome = called(graph, whatsapp_cloud.send_call({**secrets, **changed}, CUSTOMER))
        assert outcome.status is not None, outcome.error
        return whatsapp_cloud.read_send(outcome.status, outcome.body)

    graph.throttled = 1
    throttled = sent()
    assert throttled.outcome == "retry" and "(error 130429)" in throttled.error
    assert sent().outcome == "sent"
    expired = sent(access_token="EAAexpired0000")
    assert expired.outcome == "failed"
    assert "(error 190)" in expired.error and "system user's token" in expired.error
    unknown = sent(phone_number_id="999")
    assert unknown.outcome == "failed" and "(error 100/33)" in unknown.error
    assert "Check the Phone number ID" in unknown.error
    for code in (4, 80007, 131048, 131056):  # the other rate limits, as Meta writes them
        body = json.dumps({"error": {"message": "limit", "type": "OAuthException", "code": code}})
        assert whatsapp_cloud.read_send(400, body).outcome == "retry"
    assert whatsapp_cloud.read_send(503, "<html>Service Unavailable</html>") == SendAnswer(
        "retry", error="Meta answered 503: <html>Service Unavailable</html>."
    )


def test_cloud_api_check_reads_the_numbers_fields(graph: FakeGraph) -> None:
    secrets = cloud_secrets(graph)

    def checked(**changed: str) -> tuple[bool, str]:
        outcome = called(graph, whatsapp_cloud.check_call({**secrets, **changed}))
        assert outcome.status is not None, outcome.error
        answer = whatsapp_cloud.read_check(outcome.status, outcome.body)
        return answer.ok, answer.words

    assert checked() == (True, "Connected to Acme Sales (+1 650-555-1111), quality rating GREEN.")
    assert graph.calls[0].query == {"fields": "display_phone_number,verified_name,quality_rating"}
    graph.permitted = False
    ok, words = checked()
    assert not ok and "(error 10)" in words and "whatsapp_business_messaging" in words
    graph.permitted = True
    ok, words = checked(access_token="EAAwrong000000")
    assert not ok and "(error 190)" in words


def test_cloud_api_statuses_become_send_reports_with_131047_explained() -> None:
    body = failed_status(
        "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI1",
        "5511987654321",
        131047,
        "Re-engagement message",
        DETAILS_131047,
    )
    reading = whatsapp_cloud.read(body)
    [report] = reading.reports
    assert (report.message_id, report.failed) == ("wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI1", True)
    assert report.error.startswith(
        f"Meta refused it (error 131047): Re-engagement message. {DETAILS_131047} "
    )
    assert "Send an approved message template instead" in report.error
    assert reading.messages == [] and reading.ignored == 1

    delivered = json.loads((FIXTURES / "whatsapp_cloud" / "status.json").read_text())
    [status] = delivered["entry"][0]["changes"][0]["value"]["statuses"]
    assert whatsapp_cloud.read(delivered).reports == [SendReport(status["id"], failed=False)]


def test_the_transport_refuses_a_private_sender_unless_its_host_and_port_are_allowed(
    fake_evolution: FakeEvolution,
) -> None:
    call = evolution.check_call(evolution_secrets(fake_evolution))
    refused = called(fake_evolution, call, allowed=False)
    assert refused.status is None and "non-public address" in refused.error
    assert fake_evolution.calls == []
    assert called(fake_evolution, call).status == 200


WAHA_SESSION = {
    "name": "default",
    "status": "WORKING",
    "config": {"webhooks": []},
    "me": {"id": "16505551111@c.us", "pushName": "Acme Sales"},
    "engine": {"engine": "WEBJS"},
}
"""``GET /api/sessions/{session}`` as WAHA answers it (``SessionDetailedInfo``)."""


def test_waha_check_calls_the_session_and_says_what_each_status_needs() -> None:
    call = waha.check_call(
        {"api_url": "http://waha.internal:3000/", "x_api_key": "k" * 16, "session": "default"}
    )
    assert (call.method, call.url) == ("GET", "http://waha.internal:3000/api/sessions/default")
    assert call.headers["x-api-key"] == "k" * 16
    working = waha.read_check(200, json.dumps(WAHA_SESSION))
    assert working.ok and working.words == (
        "Session 'default' is WORKING as +16505551111: chathooks can send."
    )
    qr = waha.read_check(200, json.dumps({**WAHA_SESSION, "status": "SCAN_QR_CODE", "me": None}))
    assert not qr.ok and "SCAN_QR_CODE, not WORKING" in qr.words and "QR code" in qr.words
    stopped = waha.read_check(200, json.dumps({**WAHA_SESSION, "status": "STOPPED"}))
    assert "POST /api/sessions/default/start" in stopped.words
    unauthorized = waha.read_check(401, json.dumps({"message": "Unauthorized", "statusCode": 401}))
    assert not unauthorized.ok and "refused the API key" in unauthorized.words
    missing = {"message": "Session not found", "error": "Not Found", "statusCode": 404}
    assert "no session with this name" in waha.read_check(404, json.dumps(missing)).words


def test_a_check_that_reaches_something_else_says_to_check_the_url() -> None:
    page = "<html><body>Welcome to nginx!</body></html>"
    assert evolution.read_check(200, page).words == (
        f"The answer is not Evolution API's ({page}): check the Evolution API URL."
    )
    assert not waha.read_check(200, "{}").ok
    assert whatsapp_cloud.read_check(200, "").words == (
        "The answer is not the Graph API's (an empty body): check the Graph API URL."
    )


def twilio_secrets(server: FakeServer, **changed: str) -> dict[str, str]:
    secrets = {"auth_token": TWILIO_TOKEN, "account_sid": TWILIO_SID}
    return {**secrets, "sender": TWILIO_SENDER, "api_url": server.url, **changed}


def test_twilio_sends_a_form_and_reads_the_message_sid(fake_twilio: FakeTwilio) -> None:
    secrets = twilio_secrets(fake_twilio)
    outcome = called(fake_twilio, twilio.send_call(secrets, CUSTOMER))
    [call] = fake_twilio.calls
    assert call.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert parse_qs(call.body) == {
        "To": ["whatsapp:+5511987654321"],
        "From": [TWILIO_SENDER],
        "Body": ["Your quote is attached"],
    }
    assert outcome.status == 201
    sid = json.loads(outcome.body)["sid"]
    assert twilio.read_send(outcome.status, outcome.body) == SendAnswer("sent", sid)

    template = Template("HXb5b62575e6e4ff6129ad7c8efe1f983e", "en", ("Ana", "Q-1042"))
    reply = Reply(CUSTOMER.chat_external_id, CUSTOMER.phone, False, "", template)
    called(fake_twilio, twilio.send_call(secrets, reply))
    sent = parse_qs(fake_twilio.calls[-1].body)
    assert sent["ContentSid"] == ["HXb5b62575e6e4ff6129ad7c8efe1f983e"]
    assert json.loads(sent["ContentVariables"][0]) == {"1": "Ana", "2": "Q-1042"}


def test_twilio_refusals_and_its_check_in_words(fake_twilio: FakeTwilio) -> None:
    secrets = twilio_secrets(fake_twilio)

    def sent(**changed: str) -> SendAnswer:
        outcome = called(fake_twilio, twilio.send_call({**secrets, **changed}, CUSTOMER))
        assert outcome.status is not None, outcome.error
        return twilio.read_send(outcome.status, outcome.body)

    unknown = sent(sender="whatsapp:+15550000000")
    assert unknown.outcome == "failed"
    assert unknown.error.startswith("Twilio answered 400 (error 63007): Twilio could not find")
    assert "check the WhatsApp sender" in unknown.error
    wrong = sent(auth_token="0" * 32)
    assert wrong == SendAnswer(
        "failed",
        error="Twilio answered 401 (error 20003): Authenticate. Twilio refused the sign-in: "
        "check the Account SID and the Auth Token.",
    )
    throttled = json.dumps({"code": 20429, "message": "Too Many Requests", "status": 429})
    assert twilio.read_send(429, throttled).outcome == "retry"
    assert twilio.read_send(503, "").outcome == "retry"

    outcome = called(fake_twilio, twilio.check_call(secrets))
    assert outcome.status == 200
    assert twilio.read_check(outcome.status, outcome.body) == CheckAnswer(
        True, "Account 'Acme Sales' is active: chathooks can send."
    )
    fake_twilio.state = "suspended"
    outcome = called(fake_twilio, twilio.check_call(secrets))
    assert outcome.status is not None
    assert not twilio.read_check(outcome.status, outcome.body).ok


def test_twilio_status_callbacks_become_send_reports_with_63016_explained() -> None:
    def report(fields: dict[str, str]) -> list[SendReport]:
        reading = twilio.read({name: [value] for name, value in fields.items()})
        assert reading.messages == [] and reading.ignored == 1
        return reading.reports

    [failed] = report(status_callback("SM5eed", "undelivered", "63016"))
    assert (failed.message_id, failed.failed) == ("SM5eed", True)
    assert failed.error.startswith("Twilio reports it undelivered (error 63016). The customer")
    assert "Send an approved Content template instead" in failed.error
    assert report(status_callback("SM5eed", "delivered")) == [SendReport("SM5eed", failed=False)]
    assert report(status_callback("SM5eed", "queued")) == []
