"""The OpenAPI document declares the error answers every API route can give, with the
JSON shape each one has."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import Service

ERRORS = ("401", "403", "404", "409", "422")


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_every_operation_declares_its_error_answers_as_json(service: Service) -> None:
    document = service.http.get("/openapi.json").json()
    operations = [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    assert len(operations) >= 15
    missing = []
    for method, path, operation in operations:
        if path.startswith("/in/"):  # senders' webhooks: no bearer token, answers of their own
            assert {"400", "401", "404"} <= set(operation["responses"]), (method, path)
            continue
        if operation["tags"] == ["operations"]:  # probes and metrics: no token, no body
            continue
        for code in ERRORS:
            answer = operation["responses"].get(code)
            if answer is None:
                missing.append(f"{method.upper()} {path} {code}")
                continue
            schema = _resolve(document, answer["content"]["application/json"]["schema"])
            assert "detail" in schema["properties"], (method, path, code)
            assert answer["description"], (method, path, code)
    assert missing == []


def test_the_declared_shapes_are_the_answers_given(service: Service) -> None:
    team = service.workspace()
    unauthorized = service.http.get("/api/v1/outbound-webhooks")
    assert unauthorized.status_code == 401
    assert isinstance(unauthorized.json()["detail"], str)
    forbidden = team.post("/workspaces", {"name": "x", "owner_name": "y", "owner_email": "a@b.c"})
    assert forbidden.status_code == 403
    assert isinstance(forbidden.json()["detail"], str)
    assert isinstance(team.get("/outbound-webhooks/999").json()["detail"], str)
    team.post("/teammates", {"full_name": "A", "email": "a@acme.test"})
    conflict = team.post("/teammates", {"full_name": "A", "email": "a@acme.test"})
    assert conflict.status_code == 409
    assert isinstance(conflict.json()["detail"], str)
    invalid = team.post("/teammates", {"full_name": "A"})
    assert invalid.status_code == 422
    assert {"loc", "msg", "type"} <= set(invalid.json()["detail"][0])


def _with_ids(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_a_405_names_every_method_of_its_path(service: Service) -> None:
    """Every documented API path, asked with a method it lacks, and pages that take a GET
    and a POST on one path."""
    document = service.http.get("/openapi.json").json()
    expected = {
        _with_ids(path): sorted(method.upper() for method in item)
        for path, item in document["paths"].items()
    }
    expected |= {
        "/login": ["GET", "POST"],
        "/webhooks/outbound/1": ["GET", "POST"],
        "/whatsapp/sources": ["GET", "POST"],
    }
    for path, methods in expected.items():
        method = "PUT" if "PUT" not in methods else "TRACE"
        answer = service.http.request(method, path)
        assert answer.status_code == 405, (method, path)
        assert answer.headers["allow"] == ", ".join(methods), (method, path)
        assert answer.json() == {"detail": "Method Not Allowed"}
