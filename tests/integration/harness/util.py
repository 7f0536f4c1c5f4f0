"""Small shared helpers: free loopback ports, polling, TLS contexts, digests."""

import ctypes
import hashlib
import os
import signal
import socket
import ssl
import time
from typing import Callable, Optional, TypeVar

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A free TCP port on `host`, found by binding port 0 (the usual tiny race applies)."""
    assert host.startswith("127."), "loopback only"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class GiveUp(Exception):
    """Raise from a wait_until predicate to stop waiting at once (e.g. process died)."""


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05,
               message: Optional[str] = None) -> T:
    """Poll `predicate` until it returns something truthy; return that value.

    Exceptions raised by the predicate count as "not yet" (the last one is
    chained to the TimeoutError raised after `timeout` seconds), except
    GiveUp, which propagates immediately.
    """
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except GiveUp:
            raise
        except Exception as exc:  # noqa: BLE001 - polling
            last_exc = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(message or f"condition not met within {timeout}s") from last_exc
        time.sleep(interval)


def wait_log(read: Callable[[], str], pattern, count: int = 1, timeout: float = 20.0,
             interval: float = 0.05) -> str:
    """Wait until `pattern` (a plain substring, or a compiled regex) occurs at
    least `count` times in read(); return that text.

    A service writes its line about a request after the answer has left, so a
    test that asserts on a log right after an answer reads it through this,
    never once: the line may be a few milliseconds late (seconds under
    valgrind). Asserting an exact count: wait for it here, then compare.
    """
    def occurrences(text: str) -> int:
        if isinstance(pattern, str):
            return text.count(pattern)
        return len(pattern.findall(text))

    def enough():
        text = read()
        return text if occurrences(text) >= count else None
    what = pattern if isinstance(pattern, str) else pattern.pattern
    return wait_until(enough, timeout, interval, message=f"log never held {count} x {what!r} within {timeout}s")


def client_tls_context(cafile: Optional[str]) -> ssl.SSLContext:
    """Verifying client context trusting only `cafile` (system roots when None)."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def tls_handshake_ok(host: str, port: int, cafile: Optional[str], timeout: float = 1.0) -> bool:
    """True if a verified TLS handshake with host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with client_tls_context(cafile).wrap_socket(raw, server_hostname=host):
                return True
    except (OSError, ssl.SSLError):
        return False


def read_log(path: str) -> str:
    """A process's log so far ("" before it exists); undecodable bytes replaced."""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _die_with_parent():
    """preexec_fn: own session, and SIGKILL when the test process dies
    (PR_SET_PDEATHSIG), so no server outlives a crashed or killed pytest."""
    os.setsid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def child_popen_kwargs() -> dict:
    """Extra subprocess.Popen kwargs for every server the harness starts."""
    return {"preexec_fn": _die_with_parent}
