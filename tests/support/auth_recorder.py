"""A listener on a loopback address that records every `Authorization` header it receives.

It plays whatever a test needs — a registry that challenges, a token service, a host that redirects — by
routes (path → answer). Two of them on 127.0.0.1 and 127.0.0.2 are two hosts to a client, so a test can
prove that a secret reached the host it belongs to and no other (token realms and redirects included).
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from tests.fakes.http import FakeHTTPServer, RecordedRequest, Response

Route = Callable[[RecordedRequest], Response]


class AuthRecorder(FakeHTTPServer):
    def __init__(self, bind_host: str = "127.0.0.1") -> None:
        super().__init__()
        self.bind_host = bind_host
        self.routes: dict[str, Route] = {}

    @property
    def host(self) -> str:
        return f"{self.bind_host}:{self.port}"

    def route(self, path: str, answer: Route | Response) -> None:
        self.routes[path] = answer if callable(answer) else (lambda _request, a=answer: a)

    def handle(self, request: RecordedRequest) -> Response:
        route = self.routes.get(request.path)
        if route is None:
            return Response(404, {"errors": [{"code": "NAME_UNKNOWN", "message": f"no route {request.path}"}]})
        return route(request)

    def authorizations(self) -> list[str]:
        """Every Authorization header received, in order."""
        return [r.headers["authorization"] for r in self.requests if "authorization" in r.headers]

    def received(self, secret: str) -> bool:
        """Whether `secret` reached this host in any header, body or query, plain or in Basic form."""
        for request in self.requests:
            blob = " ".join([*request.headers.values(), request.path, *request.query.values()])
            blob += request.raw_body.decode("utf-8", "replace")
            for value in list(request.headers.values()):
                if value.lower().startswith("basic "):
                    try:
                        blob += base64.b64decode(value[6:]).decode("utf-8", "replace")
                    except ValueError:
                        pass
            if secret in blob:
                return True
        return False


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def challenge(realm: str, service: str = "registry") -> Response:
    """A registry's 401 that sends the client to a token service."""
    return Response(
        401,
        {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
        {"WWW-Authenticate": f'Bearer realm="{realm}",service="{service}"'},
    )


def token(value: str = "tok-123") -> Response:
    return Response(200, {"token": value})


def redirect(location: str, status: int = 307) -> Response:
    return Response(status, b"", {"Location": location})


def manifest(digest: str = "sha256:" + "ab" * 32) -> Response:
    return Response(
        200,
        b"",
        {"Docker-Content-Digest": digest, "Content-Type": "application/vnd.oci.image.index.v1+json"},
    )
