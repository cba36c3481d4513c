"""`modelyard check` against a local OpenAI-compatible streaming server on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from components.cli import main


class _Fake(BaseHTTPRequestHandler):
    delay = 0.0
    status = 200
    seen: ClassVar[list[dict]] = []

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"auth": self.headers.get("Authorization"), **body})
        if type(self).status != 200:
            self.send_response(type(self).status)
            self.end_headers()
            self.wfile.write(b'{"error": "no"}')
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        time.sleep(type(self).delay)
        for word in ("I ", "am ", "up."):
            chunk = {"choices": [{"index": 0, "delta": {"content": word}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture
def server() -> Iterator[str]:
    _Fake.delay, _Fake.status, _Fake.seen = 0.0, 200, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_reports_time_to_first_token_and_sends_the_key(server, capsys, monkeypatch):
    monkeypatch.setenv("MODELYARD_API_KEY", "sk-tenant")
    assert main(["check", "--endpoint", server, "--model", "llama-8b"]) == 0
    out = capsys.readouterr().out
    assert "model llama-8b: first token after" in out and "I am up." in out
    (request,) = _Fake.seen
    assert request["auth"] == "Bearer sk-tenant" and request["stream"] is True and request["model"] == "llama-8b"


def test_a_slow_first_token_exits_3(server, capsys):
    _Fake.delay = 0.3
    assert main(["check", "--endpoint", server, "--model", "m", "--ttft-budget", "0.1"]) == 3
    assert "above the budget" in capsys.readouterr().err


def test_a_refusal_exits_3_with_the_status(server, capsys):
    _Fake.status = 401
    assert main(["check", "--endpoint", server, "--model", "m"]) == 3
    assert "answered 401" in capsys.readouterr().err


def test_nothing_listening_exits_3(capsys):
    assert main(["check", "--endpoint", "http://127.0.0.1:9", "--model", "m", "--timeout", "5"]) == 3
    assert "cannot reach" in capsys.readouterr().err


def test_bad_endpoint_exits_2(capsys):
    assert main(["check", "--endpoint", "gateway:4000", "--model", "m"]) == 2
    assert "--endpoint" in capsys.readouterr().err


def test_the_preview_workflow_smoke_tests_each_deployed_stack_after_its_preview(root):
    """The PR workflow runs `modelyard check` for every stack of its matrix, after `pulumi preview`, and does not
    swallow its exit code (a missed objective fails the job)."""
    import yaml

    workflow = yaml.safe_load((root / ".github" / "workflows" / "preview.yml").read_text())
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    names = [step.get("name", "") for step in steps]
    check = next(i for i, name in enumerate(names) if name.startswith("modelyard check"))
    preview = next(i for i, name in enumerate(names) if name.startswith("pulumi preview"))
    assert check > preview
    run = steps[check]["run"]
    assert run.startswith("modelyard check ") and "--endpoint" in run and "--model" in run
    assert "|| true" not in run and "continue-on-error" not in steps[check]
    assert "matrix.stack" in steps[check]["if"]
    assert set(job["strategy"]["matrix"]["stack"]) == {"pilot", "product", "core"}
