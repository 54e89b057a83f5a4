"""What a newcomer meets before the first page: `make run` on a port of
their choice, a clean Ctrl-C, and the app's own 404 page in development."""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from tests.builders import device

ROOT = Path(__file__).resolve().parent.parent


def test_dev_shows_the_apps_own_404_for_an_unknown_address(settings, alice_client):
    settings.DEBUG = True
    response = alice_client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"Go to your dashboard" in response.content and b"Using the URLconf" not in response.content


def test_dev_shows_the_apps_own_404_for_another_traders_object(settings, alice_client, bob):
    settings.DEBUG = True
    theirs = device(bob, "Bob's workstation")
    response = alice_client.get(f"/devices/{theirs.pk}/edit/")
    assert response.status_code == 404
    assert b"Go to your dashboard" in response.content and b"Bob" not in response.content


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_until(fd: int, needle: bytes, seconds: float) -> bytes:
    seen, end = b"", time.monotonic() + seconds
    while needle not in seen and time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
def test_make_run_takes_a_port_prints_the_localhost_address_and_ends_cleanly_on_ctrl_c(tmp_path):
    """`PORT=… make run` in a terminal: the app answers on that port, the
    localhost address is printed after the servers' banners, and Ctrl-C
    (SIGINT to the terminal's foreground group) ends it with no make error."""
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "DATABASE_URL": f"sqlite:///{tmp_path}/run.sqlite3", "DJANGO_SETTINGS_MODULE": "config.settings.dev"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: make, in a terminal of its own
        os.chdir(ROOT)
        os.execvpe("make", ["make", "--no-print-directory", "run"], env)
    try:
        out = _read_until(fd, b"Gatecheck is up", 120)
        assert f"open http://localhost:{port}/".encode() in out, out[-2000:]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz/web", timeout=10) as response:
            assert response.status == 200
        os.write(fd, b"\x03")  # Ctrl-C, as a person types it
        out += _read_until(fd, b"\x00never", 20)
        _, status = os.waitpid(pid, 0)
    except BaseException:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        raise
    finally:
        os.close(fd)
    assert b"Error" not in out and b"*** [" not in out, out[-2000:]
    assert os.waitstatus_to_exitcode(status) in (0, -signal.SIGINT)
