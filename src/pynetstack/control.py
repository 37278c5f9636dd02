"""A control socket, so `pynetstack status` and `pynetstack connections` can ask a running stack.

`pynetstack up` listens on a UNIX socket (by default /run/pynetstack/<netns inode>-<interface>.sock, the
inode number of the network namespace, as in /proc/self/ns/net -> net:[<inode>]). A client
sends one command line and reads the text reply until the server closes the connection.
UNIX socket paths are visible from every network namespace, so this works across a lab.
"""

from __future__ import annotations

import glob
import os
import socket
import stat
import threading
from typing import Optional

from .status import status_page, tcp_table

CONTROL_DIR = "/run/pynetstack"
MAX_COMMAND = 256
STATUS_ROWS = 50


def _netns_id() -> str:
    """The inode of this process's network namespace: names on /run are shared by all of them."""
    try:
        return str(os.stat("/proc/self/ns/net").st_ino)
    except OSError:
        return "host"


def default_path(name: str) -> str:
    return os.path.join(CONTROL_DIR, f"{_netns_id()}-{name}.sock")


class ControlServer:
    def __init__(self, stack, path: str):
        self.stack = stack
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        if directory == CONTROL_DIR:
            os.makedirs(directory, mode=0o755, exist_ok=True)  # the default place: made on first use
        elif not os.path.isdir(directory):
            # a path the user gave: a typo must not leave new directories behind
            raise OSError(2, f"cannot create the control socket {path}: no directory {directory}")
        if os.path.lexists(path):
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                raise OSError(17, f"{path} exists and is not a socket: choose another --control path")
            if _alive(path):
                raise OSError(98, f"control socket {path} is in use by another running stack")
            os.unlink(path)  # a socket left behind by a stack that was killed
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        try:
            os.chmod(path, 0o600)
            self._sock.listen(8)
            self._thread = threading.Thread(target=self._serve, name="pynetstack-control", daemon=True)
            self._thread.start()
        except BaseException:  # (a SIGTERM as KeyboardInterrupt included): no socket file left behind
            self.close()
            raise

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            try:
                conn.settimeout(2.0)
                command = conn.recv(MAX_COMMAND).decode(errors="replace").strip()
                reply = self.answer(command)
                if not isinstance(reply, str):  # a reply that streams (conntrack events)
                    threading.Thread(target=_stream, args=(conn, reply), daemon=True).start()
                    continue
                conn.sendall(reply.encode())
            except OSError:
                pass
            conn.close()

    def answer(self, command: str):
        from .router_control import answer as router_answer
        reply = router_answer(self.stack, command)
        if reply is not None:
            return reply
        if command == "status":  # the full table is `connections`
            with self.stack.lock:
                return status_page(self.stack, max_rows=STATUS_ROWS, heading=f"control socket {self.path}")
        if command == "connections":
            with self.stack.lock:
                return tcp_table(self.stack.tcp) + "\n"
        return (f"unknown command {command!r}; commands: status, connections, route, conntrack, nft\n")

    def close(self) -> None:
        try:
            self._sock.close()
        finally:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def _stream(conn, lines) -> None:
    """Write a streaming reply until it ends or the reader goes away."""
    try:
        conn.settimeout(5.0)
        for line in lines:
            conn.sendall(line.encode())
    except OSError:
        pass
    finally:
        lines.close()
        conn.close()


def _alive(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def find_socket(path: Optional[str]) -> str:
    """The control socket to talk to: ``path``, else the only live one of this network
    namespace, else the only live one at all (``describe_socket`` says which it is)."""
    if path:
        return path
    if os.path.isdir(CONTROL_DIR) and not os.access(CONTROL_DIR, os.R_OK | os.X_OK):
        raise PermissionError(13, f"permission denied: cannot look for running stacks in {CONTROL_DIR} "
                                  "(run as root, or give --control PATH)")
    sockets = sorted(glob.glob(os.path.join(CONTROL_DIR, "*.sock")))
    live = [p for p in sockets if _alive(p)]
    here = [p for p in live if _is_local(p)]
    candidates = here or live  # prefer the stacks of the namespace we run in
    if not candidates:
        denied = [p for p in sockets if not os.access(p, os.R_OK | os.W_OK)]
        if denied:
            raise PermissionError(13, f"permission denied: {denied[0]} belongs to another user "
                                      "(run as root, or give --control PATH)")
        raise OSError(2, f"no running stack found (no live socket in {CONTROL_DIR}); start one with 'pynetstack up'")
    if len(candidates) > 1:
        raise OSError(22, f"several stacks are running ({', '.join(candidates)}); choose one with --control PATH")
    return candidates[0]


def _is_local(path: str) -> bool:
    return os.path.basename(path).startswith(_netns_id() + "-")


def describe_socket(path: str) -> str:
    """Which stack a control socket belongs to, for the first line of a report."""
    name = os.path.basename(path)
    netns, sep, rest = name.partition("-")
    if os.path.dirname(os.path.abspath(path)) != CONTROL_DIR or not sep or not netns.isdigit():
        return f"the stack at {path}"
    interface = rest[:-5] if rest.endswith(".sock") else rest
    where = "this network namespace" if _is_local(path) else \
        f"ANOTHER network namespace (net:[{netns}]; this one is net:[{_netns_id()}])"
    return f"the stack on {interface} in {where}, control socket {path}"


def query(command: str, path: Optional[str] = None, timeout: Optional[float] = 5.0, out=None) -> str:
    path = find_socket(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except PermissionError:
            raise PermissionError(13, f"permission denied: {path} (run as root, or as the user who "
                                      "started the stack)") from None
        except OSError as exc:
            raise OSError(exc.errno, f"cannot reach the stack at {path}: {exc.strerror}") from None
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            if out is not None:  # a streaming reply: pass it on as it comes
                out.write(chunk.decode(errors="replace"))
                out.flush()
                continue
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
