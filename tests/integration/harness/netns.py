"""TCP forwarding between the loopback of two network namespaces.

A container on a network the test made (a bridge) has its own network
namespace; the test's servers listen on the host's 127.0.0.1. Rather than
sending anything over the bridge, Forward listens on 127.0.0.1:PORT in one
namespace and connects to 127.0.0.1:PORT2 in the other, so every byte the test
and the container exchange travels over a loopback interface (TLS passes
through untouched: certificates naming 127.0.0.1 stay valid on both sides).

A socket belongs to the namespace of the thread that created it, and setns()
moves only the calling thread: sockets for the other namespace are made on a
short-lived thread that enters it first. Needs root (CAP_SYS_ADMIN).

    fwd = Forward(listen_ns=None, listen_port=p, connect_ns=f"/proc/{pid}/ns/net", connect_port=8443)
    fwd.start(); ...; fwd.stop()

listen_host lets the listener take another address of the listening
namespace's loopback (one the test added to `lo` in a namespace it made).
"""

import ctypes
import os
import socket
import threading
from typing import List, Optional

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def socket_in(ns_path: Optional[str]) -> socket.socket:
    """A TCP socket in the network namespace at ns_path (e.g. /proc/PID/ns/net); None: ours."""
    if ns_path is None:
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    out = {}

    def make():
        try:
            fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({ns_path}): {os.strerror(err)}")
                out["sock"] = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                os.close(fd)
        except BaseException as exc:     # noqa: BLE001 - handed to the caller
            out["error"] = exc

    t = threading.Thread(target=make, daemon=True)   # ends in the other namespace, and exits
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["sock"]


def _pump(src: socket.socket, dst: socket.socket):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Forward:
    def __init__(self, *, listen_ns: Optional[str], listen_port: int, connect_ns: Optional[str],
                 connect_port: int, listen_host: str = "127.0.0.1"):
        self.listen_ns, self.listen_port, self.listen_host = listen_ns, listen_port, listen_host
        self.connect_ns, self.connect_port = connect_ns, connect_port
        self.listener: Optional[socket.socket] = None
        self.connections = 0
        self._socks: List[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> "Forward":
        s = socket_in(self.listen_ns)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.listen_host, self.listen_port))
        s.listen(64)
        self.listener = s
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return                          # stopped
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket):
        try:
            upstream = socket_in(self.connect_ns)
            upstream.settimeout(10)
            upstream.connect(("127.0.0.1", self.connect_port))
            upstream.settimeout(None)
        except OSError:
            client.close()
            return
        with self._lock:
            if self._stopped:
                client.close()
                upstream.close()
                return
            self.connections += 1
            self._socks += [client, upstream]
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
        client.close()
        upstream.close()

    def stop(self):
        with self._lock:
            self._stopped = True
            socks, self._socks = self._socks, []
        if self.listener is not None:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
