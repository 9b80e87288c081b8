"""The fake senders as pytest fixtures (a plugin ``conftest.py`` loads), each with the
credentials it accepts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_senders.evolution import FakeEvolution
from tests.fake_senders.twilio import FakeTwilio
from tests.fake_senders.waha import FakeWaha
from tests.fake_senders.whatsapp_cloud import FakeGraph

EVOLUTION_KEY = "B6D711FCDE4D4FD5936544120E713976"
"""The instance ``sales``'s API key (the example key of Evolution's docs)."""
META_TOKEN = "EAAJB8sZCzZBZAcBO1mZCk0aZAtoken0123456789"
NUMBER_ID = "106540352242922"
TWILIO_SID = "AC0a1b2c3d4e5f60718293a4b5c6d7e8f9"
TWILIO_TOKEN = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
TWILIO_SENDER = "whatsapp:+14155238886"


@pytest.fixture
def fake_evolution() -> Iterator[FakeEvolution]:
    server = FakeEvolution("sales", EVOLUTION_KEY).start()
    yield server
    server.stop()


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    server = FakeGraph(NUMBER_ID, META_TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    server = FakeTwilio(TWILIO_SID, TWILIO_TOKEN, TWILIO_SENDER).start()
    yield server
    server.stop()


@pytest.fixture
def waha() -> Iterator[FakeWaha]:
    server = FakeWaha().start()
    yield server
    server.stop()
