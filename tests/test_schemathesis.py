"""schemathesis against the app's own OpenAPI document: every operation, with generated
valid and invalid requests, over real HTTP. No answer may be a server error, and every
answer must be one the document declares, in the shape it declares. On PostgreSQL the
ingest operations run, with half their events on a real account, so they reach the
database (NUL, extreme timestamps, long texts...)."""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ADMIN_TOKEN, Service
from tests.receiver import Receiver

EXAMPLES = int(os.environ.get("CHATHOOKS_SCHEMATHESIS_EXAMPLES", "25"))
INGEST = ("/api/v1/messages", "/api/v1/messages/batch")
ACCOUNT = "+972500000000"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class Caller:
    """Sends a generated case to chathooks as a workspace (or the operator) would, with
    webhook URLs kept on the loopback receiver, so nothing leaves this machine."""

    def __init__(self, service: Service, receiver: Receiver) -> None:
        team = service.workspace()
        team.account(ACCOUNT)
        self.service = service
        self.receiver = receiver
        self.token = team.token
        team.webhook(receiver.url)

    def call(self, case: Any, data: st.DataObject) -> None:
        token = ADMIN_TOKEN if case.path == "/api/v1/workspaces" else self.token
        if isinstance(case.body, dict):
            self._tame(case.body, data)
        response = case.call_and_validate(
            base_url=self.service.url,
            headers={"Authorization": f"Bearer {token}"},
            checks=CHECKS,
        )
        if case.path == "/api/v1/workspace/api-token" and response.status_code == 200:
            self.token = response.json()["api_token"]

    def _tame(self, body: dict[str, Any], data: st.DataObject) -> None:
        if isinstance(body.get("url"), str):
            body["url"] = f"{self.receiver.url}?generated={body['url'][:300]}"
        events = body.get("messages") if isinstance(body.get("messages"), list) else [body]
        for item in events:
            real = isinstance(item, dict) and "whatsapp_account_phone" in item
            if real and data.draw(st.booleans(), label="on the real account"):
                item["whatsapp_account_phone"] = ACCOUNT


def _run(caller: Caller, only: tuple[str, ...] = ()) -> int:
    schema = schemathesis.openapi.from_url(caller.service.url + "/openapi.json")
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if only and operation.path not in only:
            continue
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        @settings(
            max_examples=EXAMPLES * (2 if only else 1),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy, data=st.data())
        def check(case: Any, data: st.DataObject) -> None:
            caller.call(case, data)

        check()
        ran += 1
    return ran


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_operation_on_sqlite(service: Service, receiver: Receiver) -> None:
    assert _run(Caller(service, receiver)) >= 19


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_ingest_path_on_postgresql(service: Service, receiver: Receiver) -> None:
    assert _run(Caller(service, receiver), INGEST) == 2
