"""The kinds of sender, by name: the one place that knows them all."""

from __future__ import annotations

from chathooks.sources import evolution, twilio, waha, whatsapp_cloud
from chathooks.sources.protocol import Kind, Sender
from chathooks.states import SourceKind

_ALL: tuple[Kind, ...] = (whatsapp_cloud, waha, evolution, twilio)
KINDS: dict[SourceKind, Kind] = {SourceKind(kind.NAME): kind for kind in _ALL}
"""Every ``SourceKind`` has its module here, in the enum's order."""

_SENDING: tuple[Sender, ...] = (whatsapp_cloud, waha, evolution, twilio)
SENDERS: dict[SourceKind, Sender] = {SourceKind(kind.NAME): kind for kind in _SENDING}
"""The kinds whose sender's API chathooks can send through (``chathooks.send``)."""
