"""Accessibility fixes that axe-core named: the keyboard focus ring stands
out from what surrounds it (at least 3:1, WCAG 1.4.11, read from the CSS),
and the flash messages are a list inside a status region (a ``ul`` with
role="status" breaks the list's semantics)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = (Path(__file__).resolve().parent.parent / "static" / "css" / "app.css").read_text()


def luminance(color: str) -> float:
    r, g, b = (int(color.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4))
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_focus_ring_has_3_to_1_on_the_page_and_on_the_header():
    ring = re.search(r"a:focus[^{]*\{[^}]*outline: 3px solid (#[0-9a-fA-F]{6})", CSS).group(1)
    header_ring = re.search(r"\.site-header a:focus[^{]*\{[^}]*outline-color: (#[0-9a-fA-F]{3,6})", CSS).group(1)
    header_ring = "#ffffff" if header_ring.lower() == "#fff" else header_ring
    page = re.search(r"--bg: (#[0-9a-fA-F]{6})", CSS).group(1)
    header = re.search(r"\.site-header \{ background: (#[0-9a-fA-F]{6})", CSS).group(1)
    assert contrast(ring, "#ffffff") >= 3 and contrast(ring, page) >= 3
    assert contrast(header_ring, header) >= 3


@pytest.mark.django_db
def test_flash_messages_are_a_list_inside_a_status_region(alice_client):
    response = alice_client.post("/accounts/security/sessions/end-others/", follow=True)
    html = response.content.decode()
    assert '<div role="status"><ul class="messages">' in html and '<ul class="messages" role="status">' not in html
