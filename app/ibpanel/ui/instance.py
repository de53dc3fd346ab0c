"""One running panel per settings profile.

``acquire(profile)`` either makes this process the profile's instance (returns an
``InstanceGuard``) or, when another process already is, asks that one to come to the front and
returns ``None`` (the caller exits 0, saying so). Two profiles (``--profile NAME``) run side by
side. Built on QLocalServer / QLocalSocket: a Unix domain socket on Linux and macOS (a file in
the temp directory, removed again if a crash left it behind), a named pipe on Windows.

Needs a QCoreApplication; ``activate_requested`` is delivered by the Qt event loop.
"""

from __future__ import annotations

import hashlib
import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QAbstractSocket, QLocalServer, QLocalSocket

from ibpanel import paths

log = logging.getLogger(__name__)

ACTIVATE_MESSAGE = b"activate\n"
_MAX_MESSAGE_BYTES = 4096  # nothing we send is longer; stops a stray client from growing a buffer


def server_name(profile: str = paths.DEFAULT_PROFILE) -> str:
    """The local socket name of a profile: one per user and profile (keyed by its settings folder).

    Hashing the settings folder keeps the name short (Unix socket paths are limited to ~100
    bytes), makes it per user, and makes ``IBPANEL_HOME`` (portable installs, tests) its own scope.
    """
    digest = hashlib.sha256(str(paths.config_dir(profile)).encode("utf-8")).hexdigest()[:20]
    return f"ibpanel-{digest}"


class InstanceGuard(QObject):
    """Proof that this process is the profile's instance; keep it alive as long as the window.

    Signals (delivered on the Qt thread):
        activate_requested(): another launch of the same profile asked this one to show itself;
            the main window should raise, un-minimise and activate.
    """

    activate_requested = Signal()

    def __init__(self, name: str, server: QLocalServer | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._server = server
        self._buffers: dict[QLocalSocket, bytes] = {}
        if server is not None:
            server.setParent(self)
            server.newConnection.connect(self._on_new_connection)

    @property
    def is_listening(self) -> bool:
        """False when the socket could not be created (single-instance protection is off)."""
        return self._server is not None and self._server.isListening()

    def release(self) -> None:
        """Stop listening (removes the socket file); a later launch becomes the instance."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for socket in list(self._buffers):
            socket.abort()
            socket.deleteLater()
        self._buffers.clear()

    def _on_new_connection(self) -> None:
        while self._server is not None and self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            self._buffers[socket] = b""
            socket.readyRead.connect(lambda s=socket: self._on_ready_read(s))
            socket.disconnected.connect(lambda s=socket: self._on_disconnected(s))
            self._on_ready_read(socket)  # the message may have arrived before the connection was accepted

    def _on_ready_read(self, socket: QLocalSocket) -> None:
        if socket not in self._buffers:
            return
        buffer = self._buffers[socket] + bytes(socket.readAll().data())
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line + b"\n" == ACTIVATE_MESSAGE:
                log.info("another launch of this profile asked this window to come to the front")
                self.activate_requested.emit()
            else:
                log.warning("single-instance socket: ignored unknown message %r", line[:80])
        if len(buffer) > _MAX_MESSAGE_BYTES:
            socket.abort()
            buffer = b""
        self._buffers[socket] = buffer

    def _on_disconnected(self, socket: QLocalSocket) -> None:
        self._on_ready_read(socket)
        self._buffers.pop(socket, None)
        socket.deleteLater()


def _ask_running_instance(name: str, timeout_ms: int) -> bool:
    """True if an instance listens on ``name`` and took our activate message."""
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(timeout_ms):
        return False
    socket.write(ACTIVATE_MESSAGE)
    delivered = socket.waitForBytesWritten(timeout_ms) or socket.bytesToWrite() == 0
    socket.disconnectFromServer()
    if socket.state() != QLocalSocket.LocalSocketState.UnconnectedState:
        socket.waitForDisconnected(timeout_ms)
    return delivered


def acquire(profile: str = paths.DEFAULT_PROFILE, timeout_ms: int = 1000) -> InstanceGuard | None:
    """Become the profile's single instance, or wake the running one and return None.

    Returns an ``InstanceGuard`` (keep a reference; connect ``activate_requested``), or ``None``
    when another process already runs this profile and has been asked to come to the front.
    If the socket cannot be created at all, logs why and returns a guard that is not listening:
    the panel still starts rather than refusing to run.
    """
    name = server_name(profile)
    for _attempt in range(3):
        if _ask_running_instance(name, timeout_ms):
            return None
        server = QLocalServer()
        # Only this user may connect (socket file mode 0700 / pipe ACL).
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if server.listen(name):
            log.debug("single instance: listening as %s for profile %r", server.fullServerName(), profile)
            return InstanceGuard(name, server)
        error, text = server.serverError(), server.errorString()
        server.deleteLater()
        if error != QAbstractSocket.SocketError.AddressInUseError:
            log.warning("single instance: cannot listen on %s (%s); running without it", name, text)
            return InstanceGuard(name, None)
        # Address in use. A live instance that just started answers; otherwise the socket file
        # is left over from a crash: remove it and listen again.
        if _ask_running_instance(name, timeout_ms):
            return None
        log.info("single instance: removing stale socket %s left by an earlier run", name)
        QLocalServer.removeServer(name)
    log.warning("single instance: could not claim %s after retries; running without it", name)
    return InstanceGuard(name, None)
