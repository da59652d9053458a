"""Key-value stores for the rendezvous of a process group: a TCP store served by rank 0 and a
file store on a shared file system, with the same small interface as torch's stores.

Values are bytes. ``get`` blocks until the key is set (or the timeout passes, raising
``TimeoutError``); ``add`` adds to an integer counter and returns its new value; ``check``
says whether keys are set without waiting.

The TCP protocol is private to pocaflow: a request is one op byte (``S`` set, ``G`` get,
``A`` add, ``C`` check), the key (4-byte length, UTF-8) and a payload (8-byte length); the
reply is a status byte (``O`` done, ``T`` timed out) and a payload. A ``G`` payload carries the
milliseconds the server waits for the key; the server answers ``T`` when they run out.
"""

from __future__ import annotations

import atexit
import base64
import errno
import fcntl
import functools
import os
import socket
import socketserver
import struct
import threading
import time

#: The default time to wait for a key or for a server (seconds), as torch's 300 s.
DEFAULT_TIMEOUT = 300.0


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise ConnectionError("the store's connection closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


class Store:
    """The interface of :class:`TCPStore` and :class:`FileStore`."""

    timeout: float

    def set(self, key: str, value: bytes) -> None:
        """Sets ``key`` to ``value`` (bytes or str)."""
        raise NotImplementedError

    def get(self, key: str, timeout: float | None = None) -> bytes:
        """The value of ``key``, waiting until it is set; ``TimeoutError`` after ``timeout``
        seconds (default: the store's)."""
        raise NotImplementedError

    def add(self, key: str, amount: int) -> int:
        """Adds ``amount`` to the integer at ``key`` (0 if unset) and returns the sum."""
        raise NotImplementedError

    def check(self, keys: list[str]) -> bool:
        """Whether every key of ``keys`` is set (never waits)."""
        raise NotImplementedError

    def wait(self, keys: list[str], timeout: float | None = None) -> None:
        """Waits until every key of ``keys`` is set; ``TimeoutError`` names the missing ones."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        for key in keys:
            try:
                self.get(key, timeout=max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                missing = [k for k in keys if not self.check([k])]
                raise TimeoutError(
                    f"keys {missing} of the store were not set within {limit:g} s"
                ) from None


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, address: tuple[str, int]) -> None:
        self.data: dict[str, bytes] = {}
        self.changed = threading.Condition()
        self.connections = 0
        super().__init__(address, _Handler)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def setup(self) -> None:
        with self.server.changed:
            self.server.connections += 1

    def finish(self) -> None:
        with self.server.changed:
            self.server.connections -= 1
            self.server.changed.notify_all()

    def handle(self) -> None:
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                op = sock.recv(1)
                if not op:
                    return
                (klen,) = struct.unpack("!I", _recv_exact(sock, 4))
                key = _recv_exact(sock, klen).decode()
                (plen,) = struct.unpack("!Q", _recv_exact(sock, 8))
                payload = _recv_exact(sock, plen)
                status, reply = self.serve(op, key, payload)
                sock.sendall(status + struct.pack("!Q", len(reply)) + reply)
        except (ConnectionError, OSError):
            return

    def serve(self, op: bytes, key: str, payload: bytes) -> tuple[bytes, bytes]:
        data, changed = self.server.data, self.server.changed
        with changed:
            if op == b"S":
                data[key] = payload
                changed.notify_all()
                return b"O", b""
            if op == b"A":
                value = int(data.get(key, b"0")) + int(payload)
                data[key] = str(value).encode()
                changed.notify_all()
                return b"O", data[key]
            if op == b"C":
                keys = payload.decode().split("\n") if payload else []
                return b"O", b"1" if all(k in data for k in keys) else b"0"
            if op == b"G":
                wait_s = int(payload) / 1000
                if not changed.wait_for(lambda: key in data, timeout=wait_s):
                    return b"T", b""
                return b"O", data[key]
        return b"T", b"unknown op"


class TCPStore(Store):
    """A store served over TCP by the process made with ``is_master=True`` (a daemon thread
    of it) and reached by the others at ``host:port``.

    The master raises ``RuntimeError`` when the port is in use; a client retries until the
    server is up and raises ``RuntimeError`` when it is not within ``timeout`` seconds. The
    master's process, when it exits, first waits (up to ``timeout``) for the other processes
    to disconnect, so that a rank finishing first does not take the store from the rest.
    """

    def __init__(
        self,
        host: str,
        port: int,
        is_master: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.host, self.port, self.timeout = host, int(port), float(timeout)
        self._server: _Server | None = None
        if is_master:
            try:
                self._server = _Server(("", self.port))
            except OSError as e:
                why = "the port is in use" if e.errno == errno.EADDRINUSE else str(e)
                raise RuntimeError(
                    f"cannot serve the store on port {self.port}: {why} (choose another "
                    "MASTER_PORT or init_method port)"
                ) from None
            self.port = self._server.server_address[1]
            serve = functools.partial(self._server.serve_forever, poll_interval=0.02)
            threading.Thread(target=serve, daemon=True).start()
            atexit.register(self.close)
        self._lock = threading.Lock()
        self._sock = self._connect()

    def _connect(self) -> socket.socket:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(None)
                return sock
            except OSError as e:
                if time.monotonic() >= deadline:
                    raise RuntimeError(
                        f"no pocaflow store answered at {self.host}:{self.port} within "
                        f"{self.timeout:g} s ({e}); is rank 0 running?"
                    ) from None
                time.sleep(0.01)

    def _call(self, op: bytes, key: str, payload: bytes) -> tuple[bytes, bytes]:
        k = key.encode()
        message = op + struct.pack("!I", len(k)) + k + struct.pack("!Q", len(payload)) + payload
        with self._lock:
            self._sock.sendall(message)
            status = _recv_exact(self._sock, 1)
            (n,) = struct.unpack("!Q", _recv_exact(self._sock, 8))
            return status, _recv_exact(self._sock, n)

    def set(self, key: str, value: bytes) -> None:
        self._call(b"S", key, _as_bytes(value))

    def get(self, key: str, timeout: float | None = None) -> bytes:
        limit = self.timeout if timeout is None else timeout
        status, value = self._call(b"G", key, str(int(limit * 1000)).encode())
        if status != b"O":
            raise TimeoutError(f"the store's key {key!r} was not set within {limit:g} s")
        return value

    def add(self, key: str, amount: int) -> int:
        return int(self._call(b"A", key, str(int(amount)).encode())[1])

    def check(self, keys: list[str]) -> bool:
        return self._call(b"C", "", "\n".join(keys).encode())[1] == b"1"

    def close(self) -> None:
        """Closes the connection; the master then waits (up to the timeout) for the other
        connections to close and stops serving."""
        self._sock.close()
        server, self._server = self._server, None
        if server is None:
            return
        atexit.unregister(self.close)
        with server.changed:
            server.changed.wait_for(lambda: server.connections == 0, timeout=self.timeout)
        server.shutdown()
        server.server_close()


class FileStore(Store):
    """A store in one file that every process can open (a shared file system for several
    machines): an append-only log of ``key value`` lines under ``flock``; ``get`` polls."""

    def __init__(self, path: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path, self.timeout = path, float(timeout)
        with open(self.path, "a"):
            pass

    def _read(self) -> dict[str, bytes]:
        data = {}
        with open(self.path, "rb") as f:
            for line in f:
                if line.endswith(b"\n"):
                    key, value = line.split(b" ", 1)
                    data[base64.b64decode(key).decode()] = base64.b64decode(value)
        return data

    def _append(self, key: str, value: bytes) -> None:
        line = base64.b64encode(key.encode()) + b" " + base64.b64encode(value) + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def set(self, key: str, value: bytes) -> None:
        with open(self.path, "rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._append(key, _as_bytes(value))

    def get(self, key: str, timeout: float | None = None) -> bytes:
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            value = self._read().get(key)
            if value is not None:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the store's key {key!r} was not set within {limit:g} s")
            time.sleep(0.005)

    def add(self, key: str, amount: int) -> int:
        with open(self.path, "rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            value = int(self._read().get(key, b"0")) + int(amount)
            self._append(key, str(value).encode())
            return value

    def check(self, keys: list[str]) -> bool:
        data = self._read()
        return all(k in data for k in keys)
