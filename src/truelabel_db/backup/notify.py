"""Telling someone how a backup went: a command, a webhook, or both, on success and on failure.

The event is one JSON document (``{"event": "backup", "status": "success"|"failure", ...}``) on
the command's standard input and as the webhook's body, run by :mod:`truelabel_db.hooks`: the
command without a shell and without our secrets (the key above all), the webhook URL (which often
embeds a token, as Slack's do) read from the environment and never shown beyond its host. A hook
that fails is reported as a warning: it never turns a good backup into a failed one, nor hides
the failure it announces.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from truelabel_db.hooks import post_json, run_command

COMMAND_ENV = "TRUELABEL_NOTIFY_COMMAND"
WEBHOOK_ENV = "TRUELABEL_NOTIFY_WEBHOOK"


@dataclass
class Notifier:
    command: str | None = None
    webhook: str | None = None
    warn: Callable[[str], None] = lambda line: None
    timeout: float = 10.0
    sent: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_env(cls, command: str | None = None, warn: Callable[[str], None] = lambda line: None) -> "Notifier":
        return cls(command or os.environ.get(COMMAND_ENV) or None, os.environ.get(WEBHOOK_ENV) or None, warn)

    def notify(self, event: str, status: str, **detail: Any) -> None:
        document = {"event": event, "status": status, **detail}
        body = json.dumps(document, default=str).encode()
        self.sent.append(document)
        if self.command:
            result = run_command(self.command, body, {"TRUELABEL_STATUS": status}, self.timeout)
            if not result.ok:
                self.warn(f"notification command {result.detail}")
        if self.webhook:
            result = post_json(self.webhook, body, self.timeout)
            if not result.ok:
                self.warn(f"notification webhook failed: {result.detail}")
