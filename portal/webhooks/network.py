"""Where a webhook may be sent (SSRF guard) and the one HTTP POST that sends it.

A URL must be `https://` and its host must resolve only to public addresses: loopback,
private, link-local (cloud metadata lives there), shared, reserved and multicast addresses
are refused, at registration and again at every attempt. The attempt connects to the very
address that was checked (the host name only goes into SNI, the certificate check and the
Host header), so a DNS answer that changes in between (rebinding) cannot redirect it.
`WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true` lifts both rules (tests, intranets).
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from django.conf import settings

from portal.errors import Invalid

WEBHOOK_URL_REFUSED = "WEBHOOK_URL_REFUSED"
# Metadata services that are not in a link-local or private range everywhere.
_METADATA_ADDRESSES = {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}


def private_networks_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_PRIVATE_NETWORKS", False))


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with the query string
    address: str  # the checked IP address to connect to


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and ip not in _METADATA_ADDRESSES


def url_target(url: str) -> Target:
    """Checks `url` and resolves its host; raises Invalid(WEBHOOK_URL_REFUSED) when refused."""
    allow_private = private_networks_allowed()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Invalid(WEBHOOK_URL_REFUSED, f"Not a valid URL: {exc}.") from exc
    allowed_schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed_schemes:
        raise Invalid(WEBHOOK_URL_REFUSED, "Webhook URLs must use https://.")
    host = parts.hostname
    if not host:
        raise Invalid(WEBHOOK_URL_REFUSED, "The URL has no host.")
    if parts.username or parts.password:
        raise Invalid(WEBHOOK_URL_REFUSED, "The URL must not carry credentials.")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Invalid(WEBHOOK_URL_REFUSED, f"The host {host!r} does not resolve.") from exc
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise Invalid(WEBHOOK_URL_REFUSED, f"The host {host!r} does not resolve.")
    if not allow_private:
        refused = [a for a in addresses if not _is_public(a)]
        if refused:
            raise Invalid(WEBHOOK_URL_REFUSED,
                          f"The host {host!r} resolves to a non-public address ({refused[0]}).")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path, addresses[0])


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    error: str


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """One POST, no redirects followed, to the checked address; never raises for network trouble."""
    try:
        target = url_target(url)
    except Invalid as exc:
        return Answer(None, exc.message)
    host_part = f"[{target.host}]" if ":" in target.host else target.host
    default_port = 443 if target.scheme == "https" else 80
    host_header = host_part if target.port == default_port else f"{host_part}:{target.port}"
    options = dict(port=target.port, timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False,
                   maxsize=1)
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(target.address, server_hostname=target.host,
                                           assert_hostname=target.host, cert_reqs="CERT_REQUIRED", **options)
    else:
        pool = urllib3.HTTPConnectionPool(target.address, **options)
    try:
        response = pool.urlopen("POST", target.path, body=body, redirect=False, preload_content=False,
                                headers={**headers, "Host": host_header})
        try:
            response.read(64 * 1024, decode_content=False)  # drain a little; the body is not used
        finally:
            response.release_conn()
        status = response.status
    except urllib3.exceptions.HTTPError as exc:
        return Answer(None, f"{exc.__class__.__name__}: {exc}"[:500])
    except OSError as exc:
        return Answer(None, f"{exc.__class__.__name__}: {exc}"[:500])
    finally:
        pool.close()
    if 200 <= status < 300:
        return Answer(status, "")
    if 300 <= status < 400:
        return Answer(status, f"Redirect ({status}) not followed.")
    return Answer(status, f"HTTP {status}")
