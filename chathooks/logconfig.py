"""Log lines: plain text by default, or one JSON object per line
(``CHATHOOKS_LOG_FORMAT=json``) carrying the ids a line is about (``workspace_id``,
``webhook_id``, ``delivery_id`` as ``extra``) and never a secret or a message's text."""

from __future__ import annotations

import copy
import logging
import logging.config
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from chathooks.settings import Settings

_SECRET_PATH = re.compile(r"^/(set-password|in)/[^/]+")


def masked_path(path: str) -> str:
    """A request path fit for a log: no query string, no token or key in the path."""
    return _SECRET_PATH.sub(r"/\1/***", path.split("?", 1)[0])


class AccessFields(logging.Filter):
    """Turns uvicorn's access line into fields (method, path, status), the path masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            path = masked_path(str(path))
            record.client_addr = client
            record.method = method
            record.path = path
            record.status_code = status
            record.args = (client, method, path, version, status)
        return True


def logging_config(settings: Settings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for chathooks and uvicorn alike."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"access_fields": {"()": AccessFields}}
    config["handlers"]["access"]["filters"] = ["access_fields"]
    config["formatters"]["plain"] = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    config["handlers"]["root"] = {
        "formatter": "plain",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    if settings.log_format == "json":
        json_formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": True,
            "reserved_attrs": [*_RESERVED, "color_message"],
        }
        config["formatters"] = {"json": json_formatter}
        for handler in config["handlers"].values():
            handler["formatter"] = "json"
    config["root"] = {"handlers": ["root"], "level": settings.log_level.upper()}
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        config["loggers"][name]["level"] = settings.log_level.upper()
    config["loggers"]["alembic"] = {"level": "WARNING"}  # not a line per command run
    return config


_RESERVED = (
    "args",
    "asctime",
    "created",
    "exc_text",
    "filename",
    "funcName",
    "levelno",
    "lineno",
    "module",
    "msecs",
    "msg",
    "pathname",
    "process",
    "processName",
    "relativeCreated",
    "stack_info",
    "taskName",
    "thread",
    "threadName",
)
"""Record attributes left out of a JSON line (what remains: level, logger, message,
timestamp, exc_info and the ``extra`` ids)."""


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
