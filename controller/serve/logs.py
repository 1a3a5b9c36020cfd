"""Logging set-up: readable text for `kubectl logs` and terminals, or one JSON object per line. Values
from the cluster go through ``controller.engine.printable`` first, so that they cannot forge log lines."""

from __future__ import annotations

import datetime
import json
import logging
import sys
from dataclasses import dataclass


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc)


class TextFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class OneLineForLibraries(logging.Filter):
    """Without --verbose, kopf's and asyncio's records lose their tracebacks and line breaks: a failing
    request or login is named on one line of ours (controller/cluster/apihealth.py); --verbose shows
    them whole."""

    def filter(self, record: logging.LogRecord) -> bool:
        library = record.name.startswith("kopf") or record.name == "asyncio"
        if library and (record.exc_info or "\n" in str(record.msg)):
            record.msg, record.args = record.getMessage().replace("\n", " "), None
            record.exc_info = record.exc_text = None
        return True


@dataclass(frozen=True)
class LogSettings:
    """``config.log``: the log lines' format (text or json), and whether to log at debug level."""

    format: str = "text"
    verbose: bool = False


def setup_logging(fmt: str = LogSettings.format, verbose: bool = LogSettings.verbose) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if not verbose:
        handler.addFilter(OneLineForLibraries())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # kopf narrates every handler call at INFO; keep `kubectl logs` about hosts unless asked for more.
    logging.getLogger("kopf").setLevel(logging.DEBUG if verbose else logging.WARNING)
    for noisy in ("aiohttp", "asyncio", "urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.WARNING)
