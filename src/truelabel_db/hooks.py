"""Operator hooks — a command or a webhook — run so that they cannot hurt whoever runs them.

The follower's lag alert, the cutover's switch command and the backup notifications call code
that is not ours. Whatever that code does, three things hold:

* **No shell, no secrets.** A command is split like a shell would split it and run without one,
  with the event as JSON on its standard input; its environment is ours minus every secret (the
  backup key, passwords, database URLs that carry one, cloud credentials, tokens). A webhook gets
  the same JSON as a POST and is named in messages by its host only: its path and query often
  hold a token.
* **Failures are results, not exceptions.** A hook that cannot start, exits non-zero, outlives
  its timeout or does not answer comes back as a :class:`HookResult` saying so; the caller
  decides (the cutover undoes itself, a backup warns, the follower logs and goes on).
* **Children are reaped.** A command runs in a session of its own and is waited for; at its
  deadline the whole session is killed and waited for too. :class:`BackgroundHook` does the
  waiting on a thread, so a follower that runs for weeks neither blocks on its alerts nor
  collects zombies.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("truelabel_db.hooks")

PASS_ENV = "TRUELABEL_HOOK_ENV"  # comma-separated names a hook receives even though they look secret
SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|PRIVATE|ACCESS_KEY|API_KEY|SESSION_KEY"
    r"|^TRUELABEL_.*KEY|WEBHOOK", re.IGNORECASE)
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s@:]*:[^/\s@]+@", re.IGNORECASE)
CONNINFO_PASSWORD = re.compile(r"(^|\s)password\s*=", re.IGNORECASE)
TAIL = 300


def is_secret(name: str, value: str) -> bool:
    """Whether an environment variable looks like it holds a credential, by its name or its value."""
    return bool(SECRET_NAME.search(name) or URL_WITH_PASSWORD.search(value) or CONNINFO_PASSWORD.search(value))


def scrubbed_environment(*, base: Mapping[str, str] | None = None, keep: Iterable[str] = ()) -> dict[str, str]:
    """``base`` (default: our environment) without its secrets, except the names in ``keep`` and
    in ``TRUELABEL_HOOK_ENV`` (an operator's deliberate choice)."""
    source = os.environ if base is None else base
    allowed = set(keep) | {n.strip() for n in source.get(PASS_ENV, "").split(",") if n.strip()}
    return {k: v for k, v in source.items() if k in allowed or not is_secret(k, v)}


def hook_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a hook's process sees: our environment scrubbed, plus the event's own variables."""
    return {**scrubbed_environment(), **(extra or {})}


@dataclass(frozen=True)
class HookResult:
    """How a hook went: ``ok`` and one phrase for a message ("exited 3: disk full")."""

    ok: bool
    detail: str


def is_webhook(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def describe_hook(spec: str) -> str:
    """A hook as messages may name it: a webhook by scheme and host, a command by its program."""
    if is_webhook(spec):
        parts = urllib.parse.urlsplit(spec)
        return f"{parts.scheme}://{parts.hostname or '?'}"
    try:
        words = shlex.split(spec)
    except ValueError:
        words = spec.split()
    return words[0] if words else "(empty command)"


def run_hook(spec: str, event: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None,
             timeout: float = 30.0) -> HookResult:
    """Run ``spec`` to completion (at most ``timeout`` seconds): a webhook is POSTed ``event``,
    a command gets it on standard input and ``env`` added to a scrubbed environment."""
    body = json.dumps(dict(event or {}), default=str).encode()
    if is_webhook(spec):
        return post_json(spec, body, timeout)
    return run_command(spec, body, env, timeout)


def run_command(spec: str, body: bytes, env: Mapping[str, str] | None, timeout: float) -> HookResult:
    try:
        argv = shlex.split(spec)
    except ValueError as exc:
        return HookResult(False, f"cannot be split into words: {exc}")
    if not argv:
        return HookResult(False, "is empty")
    try:
        child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=hook_environment(env), start_new_session=True)
    except OSError as exc:
        return HookResult(False, f"could not start: {exc.strerror or exc}")
    try:
        out, err = child.communicate(body, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_session(child)
        return HookResult(False, f"did not finish within {timeout:g} s and was killed")
    if child.returncode != 0:
        said = _last_line(err or out)
        return HookResult(False, f"exited {child.returncode}" + (f": {said}" if said else ""))
    return HookResult(True, "exited 0")


def post_json(url: str, body: bytes, timeout: float) -> HookResult:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        return HookResult(False, f"answered HTTP {exc.code}")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None)
        return HookResult(False, f"unreachable ({type(reason or exc).__name__})")
    return HookResult(True, "accepted")


def _kill_session(child: subprocess.Popen[bytes]) -> None:
    """Kill the hook and whatever it started (its session), then reap it."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        child.kill()
    child.wait()
    for stream in (child.stdin, child.stdout, child.stderr):
        if stream is not None:
            stream.close()


def _last_line(data: bytes) -> str:
    lines = [line.strip() for line in data.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][:TAIL] if lines else ""


class BackgroundHook:
    """A hook for a long-running process: fired without waiting, each run on a thread of its own
    that reaps it; a failure is reported (logged by default), never raised.

    At most ``max_running`` runs are in flight: an alert storm against a hook that hangs is
    reported and dropped rather than piling up processes.
    """

    def __init__(self, spec: str | None, what: str, *, timeout: float = 60.0, max_running: int = 4,
                 report: Callable[[str], None] | None = None) -> None:
        self.spec, self.what, self.timeout, self.max_running = spec, what, timeout, max_running
        self.report = report or log.warning
        self._running: list[threading.Thread] = []
        self._lock = threading.Lock()

    def fire(self, event: Mapping[str, Any], env: Mapping[str, str] | None = None) -> bool:
        """Start the hook; False when there is none or too many runs are still going."""
        if not self.spec:
            return False
        with self._lock:
            self._running = [t for t in self._running if t.is_alive()]
            if len(self._running) >= self.max_running:
                self.report(f"{self.what} {describe_hook(self.spec)} skipped: "
                            f"{len(self._running)} earlier runs have not finished")
                return False
            thread = threading.Thread(target=self._run, args=(dict(event), dict(env or {})),
                                      name=f"hook: {self.what}", daemon=True)
            self._running.append(thread)
        thread.start()
        return True

    def _run(self, event: dict[str, Any], env: dict[str, str]) -> None:
        try:
            result = run_hook(self.spec or "", event, env=env, timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001 (a reporting thread must not die silently)
            result = HookResult(False, f"failed: {type(exc).__name__}")
        if not result.ok:
            self.report(f"{self.what} {describe_hook(self.spec or '')} {result.detail}")

    def close(self, wait: float = 5.0) -> None:
        """Give runs in flight up to ``wait`` seconds; each is reaped by its thread regardless."""
        deadline = time.monotonic() + wait
        with self._lock:
            running = list(self._running)
        for thread in running:
            thread.join(max(0.0, deadline - time.monotonic()))
