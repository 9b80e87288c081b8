"""What a browser posts, checked by the API's own schemas, with errors said field by field.

The pages accept exactly what the API accepts: a form is turned into the API's request
body and validated by it; only the wording of a few errors is the pages' own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chathooks.filters import DIRECTIONS
from chathooks.schedule import PERIOD_HOURS
from chathooks.schemas import WebhookIn, WebhookPatch
from chathooks.states import Aggregation, WebhookStatus
from chathooks.store.models import Webhook

AGGREGATIONS: dict[str, str] = {
    Aggregation.NONE: "No aggregation",
    **{
        period: f"Every {hours} hour{'s' if hours > 1 else ''}"
        for period, hours in PERIOD_HOURS.items()
    },
}
RATE_ERROR = "Enter a number above 0 (at most 10,000), or leave it empty for no limit."
MESSAGES = {
    ("url", "string_too_short"): "Enter the URL that should receive the messages.",
    ("url", "string_too_long"): "The URL is longer than 2,000 characters.",
    ("aggregation", "enum"): "Choose one of the options.",
    ("directions", "too_short"): "Tick at least one: received or sent.",
    ("directions", "literal_error"): "Choose received or sent.",
    ("email", "string_pattern_mismatch"): "Enter an e-mail address.",
    ("full_name", "string_too_short"): "Enter the full name.",
    ("phone", "string_too_short"): "Enter the phone number.",
}
Errors = dict[str, str]
Model = TypeVar("Model", bound=BaseModel)


def sentence(text: str) -> str:
    """A service's message (``no teammate with …``) as the page says it."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _number(text: str) -> float | str | None:
    """A typed number as ``WebhookIn`` takes it (JSON numbers only); text that is no
    number is passed on for it to refuse."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def field_errors(error: ValidationError) -> Errors:
    """One message per field, named by the last name in the error's location."""
    errors: Errors = {}
    for item in error.errors():
        names = [str(part) for part in item["loc"] if isinstance(part, str)]
        name = names[-1] if names else "form"
        if name == "max_requests_per_second":
            message = RATE_ERROR
        else:
            message = MESSAGES.get(
                (name, item["type"]), str(item["msg"]).removeprefix("Value error, ")
            )
        errors.setdefault(name, message)
    return errors


def checked(model: type[Model], values: dict[str, Any]) -> tuple[Model | None, Errors]:
    try:
        return model.model_validate(values), {}
    except ValidationError as error:
        return None, field_errors(error)


@dataclass
class WebhookForm:
    """Values to show again after an error, and one message per bad field."""

    url: str = ""
    name: str = ""
    aggregation: str = Aggregation.NONE
    enabled: bool = True
    rate: str = ""
    directions: list[str] = field(default_factory=lambda: list(DIRECTIONS))
    include_groups: bool = True
    account_phones: list[str] = field(default_factory=list)
    errors: Errors = field(default_factory=dict)
    valid: WebhookIn | None = None

    @classmethod
    def of(cls, webhook: Webhook) -> WebhookForm:
        stored = webhook.filters
        rate = webhook.max_requests_per_second
        return cls(
            url=webhook.url,
            name=webhook.name,
            aggregation=webhook.aggregation,
            enabled=webhook.status is WebhookStatus.ENABLED,
            rate="" if rate is None else f"{rate:g}",
            directions=list(stored.get("directions", DIRECTIONS)),
            include_groups=bool(stored.get("include_groups", True)),
            account_phones=list(stored.get("account_phones", [])),
        )

    @classmethod
    def parse(
        cls,
        *,
        url: str,
        name: str,
        aggregation: str,
        enabled: bool,
        rate: str,
        directions: list[str],
        include_groups: bool,
        account_phones: list[str],
    ) -> WebhookForm:
        """A checkbox is absent from a form when unticked. The URL's safety and the
        accounts are the service's to judge (``outbound``); the rest is ``WebhookIn``'s."""
        form = cls(
            url.strip(),
            name.strip(),
            aggregation,
            enabled,
            rate.strip(),
            directions,
            include_groups,
            account_phones,
        )
        form.valid, form.errors = checked(
            WebhookIn,
            {
                "url": form.url,
                "name": form.name,
                "aggregation": aggregation,
                "enabled": enabled,
                "max_requests_per_second": _number(form.rate),
                "filters": {
                    "directions": directions,
                    "include_groups": include_groups,
                    "account_phones": account_phones,
                },
            },
        )
        if "aggregation" in form.errors:
            form.aggregation = Aggregation.NONE
        return form

    @property
    def body(self) -> WebhookIn:
        assert self.valid is not None, "a form with errors has no body"
        return self.valid

    def changes_for(self, webhook: Webhook) -> WebhookPatch:
        """What ``outbound.update`` should apply. ``enabled`` is sent only when the switch
        changed, so saving the URL of an auto-disabled webhook keeps it auto-disabled (and
        its backlog) instead of turning it into "disabled by hand"."""
        changes = self.body.model_dump(exclude={"enabled"})
        if self.enabled != (webhook.status is WebhookStatus.ENABLED):
            changes["enabled"] = self.enabled
        return WebhookPatch.model_validate(changes)


def utc_minutes(moment: datetime) -> str:
    """A time as a ``datetime-local`` input shows it (UTC, to the minute)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


@dataclass
class ReplayForm:
    since: str = ""
    until: str = ""
    errors: Errors = field(default_factory=dict)

    @classmethod
    def around(cls, now: datetime, hours: int = 1) -> ReplayForm:
        """The last hour, as the form first suggests it."""
        return cls(utc_minutes(now - timedelta(hours=hours)), utc_minutes(now))

    def moments(self) -> tuple[datetime, datetime] | None:
        """Both times as UTC, or None with the errors said."""
        found = {}
        for name in ("since", "until"):
            try:
                found[name] = datetime.fromisoformat(getattr(self, name)).replace(tzinfo=UTC)
            except ValueError:
                self.errors[name] = "Enter a date and time (UTC)."
        return (found["since"], found["until"]) if not self.errors else None
