"""A TCP proxy in front of PostgreSQL or Redis that a test can take down, black-hole and bring back,
so an outage is real (refused or silent connections) while the service keeps its own engine and clients."""

from __future__ import annotations

import socket
import threading


class OutageProxy:
    """Forwards 127.0.0.1:<port> to `upstream`; `down()` refuses and cuts, `silent()` accepts but never
    answers, `up()` forwards again."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.mode = "up"
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, template: str) -> str:
        return template.format(port=self.port)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == "down":
                client.close()  # refused: the connection ends at once
                continue
            self._track(client)
            if self.mode == "silent":
                continue  # accepted, never answered: only the client's timeout ends it
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            self._track(server)
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _track(self, connection: socket.socket) -> None:
        with self._lock:
            self._open.append(connection)

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for connection in (source, target):
                try:
                    connection.close()
                except OSError:
                    pass

    def _cut(self) -> None:
        with self._lock:
            connections, self._open = self._open, []
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            except OSError:
                pass

    def down(self) -> None:
        self.mode = "down"
        self._cut()

    def silent(self) -> None:
        self.mode = "silent"
        self._cut()

    def up(self) -> None:
        self.mode = "up"

    def close(self) -> None:
        self._listener.close()
        self._cut()
