"""The outbound webhook form: what a browser posts, checked field by field."""

from __future__ import annotations

from dataclasses import dataclass, field

from chathooks.store.models import Webhook

AGGREGATIONS = {
    "none": "No aggregation",
    "1h": "Every 1 hour",
    "6h": "Every 6 hours",
    "12h": "Every 12 hours",
    "24h": "Every 24 hours",
}
MAX_URL_LENGTH = 2000


@dataclass
class WebhookForm:
    """Values to show again after an error, and one message per bad field."""

    url: str = ""
    aggregation: str = "none"
    enabled: bool = True
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, webhook: Webhook) -> WebhookForm:
        return cls(webhook.url, webhook.aggregation, webhook.status == "enabled")

    @classmethod
    def parse(cls, url: str, aggregation: str, enabled: str | None) -> WebhookForm:
        """A checkbox is absent from a form when unticked; the URL's safety is the service's
        job (``outbound.checked_url``), so only shape is checked here."""
        form = cls(url.strip(), aggregation, enabled is not None)
        if not form.url:
            form.errors["url"] = "Enter the URL that should receive the messages."
        elif len(form.url) > MAX_URL_LENGTH:
            form.errors["url"] = f"The URL is longer than {MAX_URL_LENGTH} characters."
        if aggregation not in AGGREGATIONS:
            form.errors["aggregation"] = "Choose one of the options."
            form.aggregation = "none"
        return form

    def changes_for(self, webhook: Webhook) -> dict[str, object]:
        """What ``outbound.update`` should apply. ``enabled`` is sent only when the switch
        changed, so saving the URL of an auto-disabled webhook keeps it auto-disabled (and
        its backlog) instead of turning it into "disabled by hand"."""
        changes: dict[str, object] = {"url": self.url, "aggregation": self.aggregation}
        if self.enabled != (webhook.status == "enabled"):
            changes["enabled"] = self.enabled
        return changes
