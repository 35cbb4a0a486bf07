"""A certificate authority made for one test session (trustme), and server certificates it signs.

The CA exists only in memory and in `pem_path` (a file under the session's temp directory), so a test can hand
that file to a build setting (`--cert`, `DCS_PIP_CA_BUNDLE`, a `COPY`), while nothing on the machine trusts
it by default: a client without the file must fail certificate verification.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

SERVER_NAMES = ("127.0.0.1", "localhost", "::1")


class TestCA:
    """`pem_path`/`pem` is the CA certificate; `server_context()` serves 127.0.0.1 and localhost with it."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, directory: Path) -> None:
        self._ca = trustme.CA(organization_name="dcs-bot tests")
        self._server_cert = self._ca.issue_cert(*SERVER_NAMES)
        directory.mkdir(parents=True, exist_ok=True)
        self.pem_path = directory / "dcs-test-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.pem_path))

    @property
    def pem(self) -> bytes:
        return self._ca.cert_pem.bytes()

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting a certificate for 127.0.0.1, localhost and ::1."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client-side context that trusts this CA only."""
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context
