"""The service's time and size limits (docs/service.md).

Both times count from a request's arrival: the moment the server has read its headers.
- `HOOK_QUEUE_TIMEOUT` (default 5 s): a request that waited longer before it is computed is
  answered 503 at once, without computing it (Metacontroller retries it with backoff).
- `HOOK_DEADLINE` (default 9 s, below Metacontroller's 10 s hook timeout): past it no further
  API call is sent and the answer is 500; nothing is answered after Metacontroller gave up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from hooks.auth import ConfigError

#: Largest request body accepted (413 above). Requests of a 5,000-object namespace are about
#: 13 MiB with every Flux object sent (targetSelection: All); see docs/performance.md.
MAX_BODY_BYTES = 32 * 1024 * 1024
#: Metacontroller's default webhook timeout.
METACONTROLLER_TIMEOUT_S = 10.0

#: WSGI environ keys set by the hook worker (hooks.worker): arrival time (time.monotonic())
#: and the request body it already read (so the app never reads it a second time).
RECEIVED_AT = "hooks.received_at"
BODY = "hooks.body"
#: A threading.Event the worker sets when it answered the request itself (the deadline's
#: 500): the app then counts the late computation's side effects but not a second answer.
ANSWERED = "hooks.answered"


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw.removesuffix("s"))
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected seconds, e.g. 5 or 2.5") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}={raw!r}: must be a positive number of seconds")
    return value


@dataclass(frozen=True)
class Limits:
    queue_timeout: float = 5.0
    deadline: float = 9.0
    max_body_bytes: int = MAX_BODY_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Limits:
        limits = cls(
            queue_timeout=_seconds(env, "HOOK_QUEUE_TIMEOUT", cls.queue_timeout),
            deadline=_seconds(env, "HOOK_DEADLINE", cls.deadline),
        )
        if limits.queue_timeout >= limits.deadline:
            raise ConfigError(
                f"HOOK_QUEUE_TIMEOUT ({limits.queue_timeout:g}s) must be below HOOK_DEADLINE "
                f"({limits.deadline:g}s)"
            )
        if limits.deadline >= METACONTROLLER_TIMEOUT_S:
            raise ConfigError(
                f"HOOK_DEADLINE ({limits.deadline:g}s) must be below Metacontroller's "
                f"{METACONTROLLER_TIMEOUT_S:g}s hook timeout"
            )
        return limits
