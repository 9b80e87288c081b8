"""The kinds of sender, by name: the one place that knows them all."""

from __future__ import annotations

from chathooks.sources import evolution, waha, whatsapp_cloud
from chathooks.sources.protocol import Kind

_ALL: tuple[Kind, ...] = (whatsapp_cloud, waha, evolution)
KINDS: dict[str, Kind] = {kind.NAME: kind for kind in _ALL}
