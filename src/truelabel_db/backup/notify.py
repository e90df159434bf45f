"""Telling someone how a backup went: a command, a webhook, or both, on success and on failure.

The event is one JSON document (``{"event": "backup", "status": "success"|"failure", ...}``) on
the command's standard input and as the webhook's body. The command is split like a shell
would but run without one; the webhook URL (which often embeds a token, as Slack's do) comes
from the environment and never appears in a message. A hook that fails is reported as a
warning: it never turns a good backup into a failed one, nor hides the failure it announces.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from truelabel_db.backup.pgtools import tool_environment

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
            self._run_command(body, status)
        if self.webhook:
            self._post(body)

    def _run_command(self, body: bytes, status: str) -> None:
        try:
            result = subprocess.run(shlex.split(self.command or ""), input=body, capture_output=True,
                                    timeout=self.timeout, env={**tool_environment(), "TRUELABEL_STATUS": status})
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            self.warn(f"notification command failed: {exc}")
            return
        if result.returncode != 0:
            self.warn(f"notification command exited {result.returncode}")

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(self.webhook or "", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or getattr(exc, "code", None) or type(exc).__name__
            self.warn(f"notification webhook failed: {reason}")
