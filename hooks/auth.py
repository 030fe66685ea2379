"""Bearer-token authentication of Metacontroller's hook calls (docs/service.md).

On by default and failing closed:
- `HOOK_TOKEN`, or `HOOK_TOKEN_FILE` (a mounted Secret, re-read when it changes), is the token;
- `HOOK_PREVIOUS_TOKEN`, `HOOK_PREVIOUS_TOKEN_FILE` or a second line in the token file is also
  accepted, for the rotation window;
- `HOOK_AUTH_DISABLED=true` is the only way to serve without a token; a token that is set is
  always enforced, whatever the switch says.
`from_env` raises ConfigError for every configuration that is not one of these, so the
service refuses to start instead of serving unauthenticated.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger("hooks.auth")

#: A token file is checked for changes at most this often (seconds).
RELOAD_INTERVAL_S = 1.0


class ConfigError(RuntimeError):
    """The service's environment is not a configuration it may serve with."""


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "false"):
        return False
    if raw == "true":
        return True
    raise ConfigError(f"{name}={env.get(name)!r}: expected 'true' or 'false'")


def _read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle.read().splitlines() if line.strip()]


@dataclass(frozen=True)
class _Stamp:
    """What tells a changed file: kubelet swaps a Secret volume's files through a symlink."""

    inode: int
    mtime_ns: int
    size: int


def _stamp(path: str) -> _Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _Stamp(st.st_ino, st.st_mtime_ns, st.st_size)


class TokenAuth:
    """Checks `Authorization: Bearer <token>` against the accepted tokens; thread-safe."""

    def __init__(
        self,
        tokens: tuple[str, ...] = (),
        *,
        token_file: str | None = None,
        previous_file: str | None = None,
        extra: tuple[str, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._static = tuple(t for t in (*tokens, *extra) if t)
        self._extra = tuple(t for t in extra if t)
        self._token_file = token_file
        self._previous_file = previous_file
        self._clock = clock
        self._lock = threading.Lock()
        self._stamps: tuple[_Stamp | None, _Stamp | None] = (None, None)
        self._checked_at = float("-inf")
        self._accepted: tuple[bytes, ...] = tuple(t.encode() for t in self._static)
        if token_file is not None:
            self._reload(initial=True)
            self._checked_at = clock()

    @property
    def source(self) -> str:
        return f"file {self._token_file}" if self._token_file else "HOOK_TOKEN"

    def accepted_count(self) -> int:
        """How many tokens are accepted right now (the current one and a previous one)."""
        self._maybe_reload()
        return len(self._accepted)

    def check(self, header: str | None) -> bool:
        """`Authorization: Bearer <token>` (scheme case-insensitive), compared in constant time."""
        scheme, _, credential = (header or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        given = credential.strip().encode()
        if not given:
            return False
        self._maybe_reload()
        ok = False
        for token in self._accepted:  # no early exit: the time does not tell which one matched
            ok |= hmac.compare_digest(given, token)
        return ok

    # --- the token file ------------------------------------------------------------------------

    def _maybe_reload(self) -> None:
        if self._token_file is None:
            return
        now = self._clock()
        if now - self._checked_at < RELOAD_INTERVAL_S:
            return
        with self._lock:
            if now - self._checked_at < RELOAD_INTERVAL_S:
                return
            self._checked_at = now
            stamps = (_stamp(self._token_file), _stamp(self._previous_file) if self._previous_file else None)
            if stamps != self._stamps:
                self._reload(initial=False)

    def _reload(self, *, initial: bool) -> None:
        assert self._token_file is not None
        stamps = (_stamp(self._token_file), _stamp(self._previous_file) if self._previous_file else None)
        try:
            lines = _read_lines(self._token_file)
        except OSError as exc:
            lines, problem = [], f"cannot read HOOK_TOKEN_FILE {self._token_file}: {exc.strerror or exc}"
        else:
            problem = "" if lines else f"HOOK_TOKEN_FILE {self._token_file} is empty"
        if problem:
            if initial:
                raise ConfigError(f"{problem}; refusing to start (HOOK_AUTH_DISABLED does not apply)")
            # Keep serving with the tokens read last: never without a token, never a burst of 401s.
            log.error("%s; still accepting the tokens read before", problem)
            self._stamps = stamps
            return
        tokens = lines[:2]
        if self._previous_file:
            # Optional: the Secret has no previous-token key outside a rotation.
            with contextlib.suppress(OSError):
                tokens += _read_lines(self._previous_file)[:1]
        accepted = tuple(dict.fromkeys(t.encode() for t in (*tokens, *self._extra)))
        if not initial and accepted != self._accepted:
            log.info("bearer tokens reloaded from %s (%d accepted)", self._token_file, len(accepted))
        self._accepted, self._stamps = accepted, stamps


def from_env(env: Mapping[str, str]) -> TokenAuth | None:
    """The authentication the environment asks for; None only with HOOK_AUTH_DISABLED=true.

    Raises ConfigError (naming the variables) for anything that would serve unauthenticated
    without the explicit switch, an unreadable or empty token file, or an ambiguous setup.
    """
    disabled = _flag(env, "HOOK_AUTH_DISABLED")
    token = (env.get("HOOK_TOKEN") or "").strip()
    token_file = (env.get("HOOK_TOKEN_FILE") or "").strip()
    previous = (env.get("HOOK_PREVIOUS_TOKEN") or "").strip()
    previous_file = (env.get("HOOK_PREVIOUS_TOKEN_FILE") or "").strip() or None
    if token and token_file:
        raise ConfigError("both HOOK_TOKEN and HOOK_TOKEN_FILE are set: set only one of them")
    if not token and not token_file:
        if previous or previous_file:
            raise ConfigError(
                "HOOK_PREVIOUS_TOKEN(_FILE) is set without HOOK_TOKEN or HOOK_TOKEN_FILE: "
                "the current token is missing"
            )
        if disabled:
            log.warning("authentication disabled (HOOK_AUTH_DISABLED=true): hooks accept any caller")
            return None
        raise ConfigError(
            "no bearer token configured: set HOOK_TOKEN or HOOK_TOKEN_FILE (a mounted Secret), "
            "or HOOK_AUTH_DISABLED=true to serve without authentication (local runs only)"
        )
    if disabled:
        log.warning("HOOK_AUTH_DISABLED=true is ignored: a token is set, so it is enforced")
    extra = (previous,) if previous else ()
    if token_file:
        return TokenAuth(token_file=token_file, previous_file=previous_file, extra=extra)
    if previous_file:
        raise ConfigError("HOOK_PREVIOUS_TOKEN_FILE needs HOOK_TOKEN_FILE (not HOOK_TOKEN)")
    return TokenAuth((token,), extra=extra)
