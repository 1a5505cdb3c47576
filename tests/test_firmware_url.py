"""Firmware images by URL: a real HTTP server on loopback. The digest is required, and a redirect is
followed only on the image's own host."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from asicfleet.sim import make_sim_image
from fleet.controls import FirmwareControl
from fleet.loop import run_async
from tests.conftest import lo

ORIGIN = lo("127.154.0.1")
OTHER = lo("127.154.0.2")  # another host, as far as any URL can tell
IMAGE = make_sim_image(version="2099.01.01", make="AntMiner", models=["Antminer S21"])
DIGEST = hashlib.sha256(IMAGE).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    other_port = 0

    def do_GET(self) -> None:
        if self.path == "/image.bmu":
            self.send_response(200)
            self.send_header("Content-Length", str(len(IMAGE)))
            self.end_headers()
            self.wfile.write(IMAGE)
            return
        targets = {"/same-host": "/image.bmu", "/other-host": f"http://{OTHER}:{self.other_port}/image.bmu"}
        if self.path in targets:
            self.send_response(302)
            self.send_header("Location", targets[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def servers() -> Iterator[str]:
    origin = http.server.ThreadingHTTPServer((ORIGIN, 0), _Handler)
    other = http.server.ThreadingHTTPServer((OTHER, 0), _Handler)
    _Handler.other_port = other.server_address[1]
    for server in (origin, other):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{ORIGIN}:{origin.server_address[1]}"
    for server in (origin, other):
        server.shutdown()
        server.server_close()


def _control(source: str, sha256: str | None = DIGEST) -> FirmwareControl:
    return FirmwareControl(source=source, make="AntMiner", models=["Antminer S21"], firmware="Stock",
                           version="2099.01.01", sha256=sha256)


def test_a_url_without_its_sha256_is_refused(servers: str) -> None:
    with pytest.raises(ValidationError, match="needs its sha256"):
        _control(f"{servers}/image.bmu", sha256=None)


def test_the_command_refuses_a_url_without_sha256_before_anything_is_sent(servers: str) -> None:
    result = subprocess.run([sys.executable, "-m", "orchestrator.cli", "firmware", f"{servers}/image.bmu",
                             "--target", lo("127.154.1.0/30"), "--make", "AntMiner", "--model", "Antminer S21",
                             "--for-firmware", "Stock", "--version", "2099.01.01"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 2
    assert "needs its sha256" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_the_image_loads_directly_and_through_a_redirect_on_its_own_host(servers: str) -> None:
    assert run_async(_control(f"{servers}/image.bmu").load()) == IMAGE
    assert run_async(_control(f"{servers}/same-host").load()) == IMAGE


def test_a_redirect_to_another_host_is_refused(servers: str) -> None:
    with pytest.raises(ValueError, match="redirects to another host"):
        run_async(_control(f"{servers}/other-host").load())


def test_an_image_that_does_not_match_its_sha256_is_refused(servers: str) -> None:
    with pytest.raises(ValueError, match="does not match its sha256"):
        run_async(_control(f"{servers}/image.bmu", sha256="0" * 64).load())
