"""What the pages refuse, apart from the services' own refusals (``chathooks.errors``)."""

from __future__ import annotations


class PageNotFound(Exception):
    """Shown as an HTML 404; also what another workspace's webhook or chat looks like."""
