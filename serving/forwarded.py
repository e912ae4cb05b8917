"""Which client a request comes from: forwarded headers count only from the proxies we trust.

Throttling (failed sign-ins, receipt lookups, API-key guessing) counts per client address. uvicorn
believes `X-Forwarded-For` from 127.0.0.1 by default, so a caller on the host rotating the header
got 40 lookups and 30 wrong sign-ins through; behind an ingress, every client had the ingress'
address. `ANKANG_TRUSTED_PROXIES` (default: none) lists the proxies (addresses or networks) whose
forwarded headers count. `ForwardedHeaders`, the outermost middleware, applies it: the client is
the right-most address of the chain that is not a trusted proxy; from anyone else the headers are
ignored. uvicorn is told the same list (`FORWARDED_ALLOW_IPS`, read when each worker starts its
server), so it never rewrites the client on its own terms first.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable

from serving.auth.asgi import Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(text: str) -> tuple[Network, ...]:
    """`10.0.0.0/8, 192.168.1.7` as networks; ValueError naming the entry that is not one."""
    networks = []
    for entry in filter(None, (part.strip() for part in (text or "").split(","))):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network (e.g. 10.0.0.0/8)") from None
    return tuple(networks)


class TrustedProxies:
    def __init__(self, networks: tuple[Network, ...] = ()):
        self.networks = networks

    @classmethod
    def from_text(cls, text: str) -> TrustedProxies:
        return cls(parse_proxies(text))

    def trusts(self, host: str | None) -> bool:
        try:
            address = ipaddress.ip_address((host or "").strip())
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client(self, peer: str, forwarded_for: list[str]) -> str:
        """The client's address: `peer` itself unless it is a trusted proxy; then, walking the
        X-Forwarded-For chain from the right, the first hop that is not one of ours."""
        if not self.trusts(peer):
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer


def tell_uvicorn(proxies: str) -> None:
    """uvicorn reads FORWARDED_ALLOW_IPS when a worker builds its server (after importing the service):
    without this it trusts 127.0.0.1 and rewrites the client before any middleware sees the peer."""
    os.environ["FORWARDED_ALLOW_IPS"] = ",".join(str(network) for network in parse_proxies(proxies))


class ForwardedHeaders:
    """Sets the request's client (and scheme, from X-Forwarded-Proto) by the trusted proxies only."""

    def __init__(self, app: Callable, *, proxies: str = ""):
        self.app = app
        self.proxies = TrustedProxies.from_text(proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            peer, port = scope.get("client") or ("", 0)
            if self.proxies.trusts(peer):
                headers = scope.get("headers") or []
                chain = [value.decode("latin-1") for name, value in headers if name == b"x-forwarded-for"]
                scope["client"] = (self.proxies.client(peer, chain), port)
                proto = [value.decode("latin-1").strip() for name, value in headers if name == b"x-forwarded-proto"]
                if proto and proto[-1] in ("http", "https"):
                    scope["scheme"] = proto[-1]
        await self.app(scope, receive, send)
