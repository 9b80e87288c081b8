"""The published OpenAPI allows every body the API accepts: each field of each request
body, given values a client might send (null, numbers as text, text as numbers, Unix
times, padded text at its limit...), is either refused by the API or allowed by the
document. (schemathesis checks the other way: what the document allows is handled.)"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
from pydantic import BaseModel, ValidationError

from chathooks import schemas
from tests.browsing import sqlite_only
from tests.conftest import Service

Path = tuple[str, ...]


def _probes(field: dict[str, Any]) -> list[Any]:
    values: list[Any] = [None, "", " ", "x", "true", "1", "1.5", 0, 1, 1.5, True, False, [], {}]
    values += [1614184000, "1614184000", "2021-02-24T16:25:29Z", "2021-02-24 16:25:29+02:00"]
    values += [["x"], [" x "], {"hmac_key": " abcdefgh "}, " amnon@acme.test ", "sent"]
    for option in [field, *field.get("anyOf", [])]:
        if "maxLength" in option:
            values.append("x" * option["maxLength"] + "  ")
    return values


def _resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return _resolved(document, document["components"]["schemas"][schema["$ref"].split("/")[-1]])
    return schema


def _fields(
    document: dict[str, Any], schema: dict[str, Any], at: Path = ()
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every property, nested objects' too, by its path in a body."""
    for name, field in _resolved(document, schema).get("properties", {}).items():
        yield (*at, name), field
        for option in [field, *field.get("anyOf", [])]:
            if "$ref" in option and "properties" in _resolved(document, option):
                yield from _fields(document, option, (*at, name))


def _with(body: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    target = changed
    for name in path[:-1]:
        if not isinstance(target.get(name), dict):
            target[name] = {}
        target = target[name]
    target[path[-1]] = value
    return changed


def _accepts(model: type[BaseModel], body: dict[str, Any]) -> bool:
    try:
        model.model_validate(body)
    except ValidationError:
        return False
    return True


BASES: dict[str, dict[str, Any]] = {
    "ChatPatch": {"responsible_email": "dana@acme.com"},
    "ReplayIn": {"since": "2021-02-24T00:00:00Z", "until": "2021-02-25T00:00:00Z"},
}


@sqlite_only
def test_every_body_the_api_accepts_is_allowed_by_the_document(service: Service) -> None:
    document = service.http.get("/openapi.json").json()
    bodies = {
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
        for item in document["paths"].values()
        for operation in item.values()
        if "requestBody" in operation
    }
    assert len(bodies) >= 10
    mismatches = []
    for name in sorted(bodies):
        model: type[BaseModel] = getattr(schemas, name)
        schema = document["components"]["schemas"][name]
        published = jsonschema_rs.validator_for(
            {**schema, "components": document["components"]},
            validate_formats=True,
        )
        base = BASES.get(name) or schema["examples"][0]
        assert _accepts(model, base), name
        for path, field in _fields(document, schema):
            for value in _probes(field):
                body = _with(base, path, value)
                if _accepts(model, body) and not published.is_valid(body):
                    mismatches.append(f"{name}.{'.'.join(path)} = {value!r}")
    assert not mismatches, "\n".join(mismatches)
