"""A username and password for a registry: what the registry client, the engine and Docker Hub are given.

A plain value, away from the HTTP client, so that the code that picks credentials (bot/services.py) does not
import requests to name them. The password never shows in a repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
