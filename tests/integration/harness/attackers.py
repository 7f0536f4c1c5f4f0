"""Hostile clients for the issue-11 scenarios, run in a separate process so
that their threads never compete with the test's own sender for Python's GIL
(what the sender measures is the service, not the test).

    with Attack("slowloris", port, cafile, n=300, src="127.0.0.2"):
        ... send real webhooks, measure ...

Kinds (each keeps its pressure up for as long as the context is open: a
connection the server closes is opened again):
  idle       n bare TCP connections that never send a TLS hello
  slowloris  n threads: TLS, then a request line and headers one byte per 0.2 s
             (refused: again after 50 ms)
  bodies     n threads: a wrong-secret POST announcing 1 MiB, then the body
             (refused: again after 50 ms)
  flood      n threads: wrong-secret webhooks as fast as the server answers
  reconnect  n threads: connect, send junk, wait for the close, again
  trickle    n threads: TLS, a webhook without Authorization announcing 60,000
             bytes, then a body byte every 20 ms (never quiet) until the
             server closes; again at once (issue 23)
  trickle405 the same as POST /healthz (refused 405)
Several source addresses may be given (src=("127.0.0.2", "127.0.0.3")); the
connections are spread over them.
"""

import multiprocessing
import os
import selectors
import socket
import ssl
import threading
import time

WRONG = b"Bearer wrong-secret"


def _srcs(src):
    return (src,) if isinstance(src, str) else tuple(src)


def _tcp(port, src, timeout=5.0):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def _tls(port, src, cafile, timeout=5.0):
    ctx = ssl.create_default_context(cafile=cafile)
    return ctx.wrap_socket(_tcp(port, src, timeout), server_hostname="localhost")


def _idle(port, cafile, n, srcs, stop, counts):
    """Keep n bare connections open; reopen every one the server closes."""
    sel = selectors.DefaultSelector()
    opened = 0

    def open_one(k):
        nonlocal opened
        try:
            s = _tcp(port, srcs[k % len(srcs)])
        except OSError:
            return False
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, k)
        opened += 1
        return True
    for k in range(n):
        open_one(k)
    counts["opened"] = opened
    while not stop.is_set():
        for key, _ in sel.select(0.05):
            sel.unregister(key.fileobj)
            key.fileobj.close()
            counts["closed_by_server"] = counts.get("closed_by_server", 0) + 1
            if not stop.is_set():
                open_one(key.data)
    for key in list(sel.get_map().values()):
        key.fileobj.close()


def _loop(kind, port, cafile, src, stop, tally):
    fn, pause = LOOPS[kind]
    while not stop.is_set():
        try:
            fn(port, cafile, src, stop)
            tally[0] += 1
        except (OSError, ssl.SSLError, ValueError):
            tally[1] += 1
            stop.wait(pause)


def _slowloris(port, cafile, src, stop):
    with _tls(port, src, cafile) as s:
        for b in b"POST /hooks/harbor HTTP/1.1\r\nX-Slow: " + b"s" * 100000:
            if stop.is_set():
                return
            s.send(bytes([b]))
            time.sleep(0.2)


def _bodies(port, cafile, src, stop):
    with _tls(port, src, cafile) as s:
        s.sendall(b"POST /hooks/harbor HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Authorization: " + WRONG + b"\r\nContent-Length: 1048576\r\n\r\n")
        chunk = b"{" + b" " * 65535
        for _ in range(16):
            if stop.is_set():
                return
            s.sendall(chunk)
        s.recv(1)


def _flood(port, cafile, src, stop):
    with _tls(port, src, cafile) as s:
        s.sendall(b"POST /hooks/harbor HTTP/1.1\r\nHost: x\r\nAuthorization: " + WRONG +
                  b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        while s.recv(65536):
            pass


def _trickle_to(head):
    def run(port, cafile, src, stop):
        with _tls(port, src, cafile) as s:
            s.sendall(head)
            s.settimeout(0.02)
            while not stop.is_set():
                try:
                    s.send(b" ")
                    if s.recv(65536) == b"":
                        return
                except (socket.timeout, ssl.SSLWantReadError):
                    continue
    return run


def _reconnect(port, cafile, src, stop):
    with _tcp(port, src, 2.0) as s:
        s.sendall(b"x" * 1024)
        s.recv(1)


# kind -> (one attempt, pause after a refused attempt). The slow kinds are
# about holding threads: a refused one comes back after 50 ms. The flood kinds
# are about rate: they come back at once.
LOOPS = {"slowloris": (_slowloris, 0.05), "bodies": (_bodies, 0.05), "flood": (_flood, 0),
         "reconnect": (_reconnect, 0),
         "trickle": (_trickle_to(b"POST /hooks/harbor HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 60000\r\n\r\n"), 0.05),
         "trickle405": (_trickle_to(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n"), 0.05)}


def _run(kind, port, cafile, n, srcs, stop, ready, result):
    # On a shared 2-core machine the attacker's own CPU would otherwise be the
    # service's loss; a real attacker brings its own machine.
    os.nice(19)
    counts = {}
    if kind == "idle":
        t = threading.Thread(target=_idle, args=(port, cafile, n, srcs, stop, counts), daemon=True)
        t.start()
        while "opened" not in counts and t.is_alive():
            time.sleep(0.01)
        ready.set()
        t.join()
    else:
        tallies = [[0, 0] for _ in range(n)]
        threads = [threading.Thread(target=_loop, daemon=True,
                                    args=(kind, port, cafile, srcs[k % len(srcs)], stop, tallies[k]))
                   for k in range(n)]
        for t in threads:
            t.start()
        time.sleep(1.0)          # let every thread reach the server once
        ready.set()
        stop.wait()
        for t in threads:
            t.join(5)
        counts = {"completed": sum(x[0] for x in tallies), "failed": sum(x[1] for x in tallies)}
    result.update(counts)


class Attack:
    """Context manager: the attack runs in a child process while open.
    `.counts` (after exit): what the attacker saw (opened, closed_by_server,
    completed, failed)."""

    def __init__(self, kind, port, cafile, n, src="127.0.0.2"):
        self.kind, self.port, self.cafile, self.n, self.srcs = kind, port, cafile, n, _srcs(src)
        self.counts = {}

    def __enter__(self):
        ctx = multiprocessing.get_context("fork")
        self._mgr = ctx.Manager()
        self._result = self._mgr.dict()
        self._stop, self._ready = ctx.Event(), ctx.Event()
        self._proc = ctx.Process(target=_run, daemon=True,
                                 args=(self.kind, self.port, self.cafile, self.n, self.srcs,
                                       self._stop, self._ready, self._result))
        self._proc.start()
        if not self._ready.wait(60):
            raise RuntimeError(f"attack {self.kind} never got going")
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._proc.join(30)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self.counts = dict(self._result)
        self._mgr.shutdown()
        return False
