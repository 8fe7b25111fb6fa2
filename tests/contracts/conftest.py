"""The contract tests' wire: every HTTP request Kontera makes is captured before it leaves the
process and answered with the documented (or recorded) response of the example under test.

Nothing reaches a network: a request no example answers fails the test at once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict


@dataclass
class Captured:
    method: str
    path: str
    query: dict[str, str]
    headers: CaseInsensitiveDict
    body: bytes | None

    def json(self):
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))


@dataclass
class Wire:
    answers: list[tuple[str, re.Pattern, dict]] = field(default_factory=list)
    captured: list[Captured] = field(default_factory=list)

    def answer(self, method: str, path_pattern: str, response: dict) -> None:
        """Answer the next ``method`` request whose path matches ``path_pattern`` (a regex) with
        ``response`` = {"status", "headers", "body"} (body: JSON value, or str for a raw body)."""
        self.answers.append((method.upper(), re.compile(path_pattern), response))

    def last(self, method: str, path_contains: str = "", *, exact: bool = False) -> Captured:
        return [c for c in self.captured if c.method == method.upper()
                and (c.path == path_contains if exact else path_contains in c.path)][-1]

    def send(self, prepared: requests.PreparedRequest) -> requests.Response:
        parts = urlsplit(prepared.url)
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        self.captured.append(Captured(prepared.method, parts.path, dict(parse_qsl(parts.query)),
                                      CaseInsensitiveDict(prepared.headers), body))
        for index, (method, pattern, canned) in enumerate(self.answers):
            if method == prepared.method and pattern.search(parts.path):
                del self.answers[index]
                return _response(prepared, canned)
        raise AssertionError(f"no example answers {prepared.method} {prepared.url}")


def _response(prepared, canned: dict) -> requests.Response:
    response = requests.Response()
    response.status_code = canned.get("status", 200)
    response.headers = CaseInsensitiveDict(canned.get("headers") or {"Content-Type": "application/json"})
    body = canned.get("body")
    response._content = (body if isinstance(body, bytes) else body.encode() if isinstance(body, str)
                         else json.dumps(body).encode() if body is not None else b"")
    response.encoding = "utf-8"
    response.url = prepared.url
    response.request = prepared
    return response


@pytest.fixture
def wire(monkeypatch):
    """Every HTTP request goes to the examples; pacing is tested elsewhere and is off here."""
    import integrations.ratelimit as ratelimit

    captured = Wire()
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send",
                        lambda adapter, request, **kwargs: captured.send(request))
    monkeypatch.setattr(ratelimit, "acquire", lambda *args, **kwargs: 0.0)
    return captured
