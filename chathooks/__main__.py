"""``python -m chathooks`` is the ``chathooks`` command."""

from chathooks.cli import app

app()
