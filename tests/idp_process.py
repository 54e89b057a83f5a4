"""The firm's identity provider for the single sign-on tests: the npm package
``oidc-provider`` (tests/idp/server.mjs), run as its own process, and a
browser-less walk through its login form."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import requests

IDP_DIR = Path(__file__).parent / "idp"
CLIENT_ID, CLIENT_SECRET = "gatecheck", "idp-client-secret-for-tests-only"
OTHER_CLIENT = "another-app"


@dataclass
class Idp:
    url: str
    jwks_file: Path
    process: subprocess.Popen

    def private_jwks(self) -> dict:
        return json.loads(self.jwks_file.read_text())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tmp_dir: Path, redirect_uris: list[str]) -> Idp:
    if not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        raise RuntimeError("tests/idp is not installed: run `make test` (it runs `npm ci --prefix tests/idp`).")
    port = _free_port()
    jwks = tmp_dir / "idp-jwks.json"
    clients = [
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": redirect_uris},
        {"client_id": OTHER_CLIENT, "client_secret": "other-secret-for-tests-only", "redirect_uris": redirect_uris},
    ]
    env = {**os.environ, "IDP_PORT": str(port), "IDP_CLIENTS": json.dumps(clients), "IDP_JWKS_FILE": str(jwks)}
    process = subprocess.Popen(["node", str(IDP_DIR / "server.mjs")], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    if not line.startswith("IDP READY"):
        process.kill()
        raise RuntimeError(f"the identity provider did not start: {line!r}")
    url = line.split()[-1]
    for _ in range(50):
        try:
            requests.get(f"{url}/.well-known/openid-configuration", timeout=2).raise_for_status()
            break
        except requests.RequestException:
            time.sleep(0.1)
    return Idp(url=url, jwks_file=jwks, process=process)


def log_in_at_idp(authorize_url: str, login: str, password: str, stop_at: str) -> str:
    """Follow the provider's pages as a browser would (one cookie jar): the
    authorization request, its login form, back to the client. Returns the
    client's callback URL (which starts with ``stop_at``)."""
    jar = requests.Session()
    response = jar.get(authorize_url, allow_redirects=False, timeout=10)
    interaction = urljoin(authorize_url, response.headers["Location"])
    response = jar.post(interaction.rstrip("/") + "/login", data={"login": login, "password": password}, allow_redirects=False, timeout=10)
    url = urljoin(interaction, response.headers["Location"])
    while not url.startswith(stop_at):
        response = jar.get(url, allow_redirects=False, timeout=10)
        assert response.status_code in (302, 303), (response.status_code, response.text[:300])
        url = urljoin(url, response.headers["Location"])
    return url
