"""The source forms (new source, settings): what a browser posts, checked field by field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from chathooks.sources.kinds import KINDS, SENDERS
from chathooks.sources.protocol import Secret
from chathooks.states import SourceKind
from chathooks.store.models import Source

SECRET_SHAPE = re.compile(r"^[\x21-\x7e]{8,200}$")
"""A credential: 8 to 200 visible characters (the API's rule, ``sources.manage``)."""
VALUE_SHAPE = re.compile(r"^[\x21-\x7e]{1,200}$")
"""An address or a name: up to 200 visible characters."""
MAX_NAME_LENGTH = 200


def user_secrets(kind: SourceKind) -> tuple[Secret, ...]:
    """The secrets a user copies from the sender into chathooks."""
    return tuple(s for s in KINDS[kind].SECRETS if not s.generated)


def receiving_secrets(kind: SourceKind) -> tuple[Secret, ...]:
    """What the new-source form asks: the user's secrets but those only sending needs
    (they are set on the source's page; kinds share their names, one form holds all)."""
    sending = SENDERS[kind].SEND_SECRETS if kind in SENDERS else ()
    return tuple(
        s
        for s in user_secrets(kind)
        if s.required or (s.role == "credential" and s.name not in sending)
    )


@dataclass
class SourceForm:
    kind: SourceKind = SourceKind.WHATSAPP_CLOUD
    name: str = ""
    secrets: dict[str, str] = field(default_factory=dict)
    """Only the values typed in: a blank field on the settings form keeps the saved one."""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, source: Source) -> SourceForm:
        return cls(source.kind, source.name)

    @classmethod
    def parse(cls, kind: str, name: str, posted: Mapping[str, str], *, new: bool) -> SourceForm:
        """``posted`` holds the ``secret_<name>`` fields of the form."""
        if kind not in KINDS:
            form = cls(name=name.strip())
            form.errors["kind"] = "Choose one of the options."
            return form
        form = cls(SourceKind(kind), name.strip())
        if not form.name:
            form.errors["name"] = "Give the source a name (the number or team it serves)."
        elif len(form.name) > MAX_NAME_LENGTH:
            form.errors["name"] = f"The name is longer than {MAX_NAME_LENGTH} characters."
        for secret in user_secrets(form.kind):
            value = posted.get(f"secret_{secret.name}", "").strip()
            if not value and not (new and secret.required):
                continue
            if secret.role == "credential" and not SECRET_SHAPE.match(value):
                form.errors[secret.name] = (
                    f"Paste the {secret.label}: 8 to 200 visible characters, no spaces."
                )
            elif not VALUE_SHAPE.match(value):
                form.errors[secret.name] = (
                    f"Enter the {secret.label}: up to 200 visible characters, no spaces."
                )
            form.secrets[secret.name] = value
        return form
