"""The real LiteLLM proxy on loopback, for the gateway's tests.

The proxy runs as a subprocess (LiteLLM as pinned in uv.lock, the same version as the pinned image) with the
kit's generated files laid out as the pod mounts them, against fake OpenAI-compatible backends served
in-process on port 0. Only addresses change: each model's in-cluster Service URL becomes its fake backend, a
proprietary provider's public API the fake provider. One proxy per test module (it takes about 5 s to start).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.k8s.gateway.config import AUTH_MODULE, AUTH_MODULE_FILE, FALLBACK_PREFIX, PROXY_ENV, key_digest

START_SECONDS = 60
REQUEST_SECONDS = 20
# What each fake answer reports as its prompt's tokens (LiteLLM's tpm limits count prompt and output).
PROMPT_TOKENS = 5


@dataclass
class FakeBackend:
    """An OpenAI-compatible server on loopback: GET /v1/models, POST /v1/chat/completions."""

    name: str
    status: int = 200
    completion_tokens: int = 3
    """Output tokens each answer reports (its usage: PROMPT_TOKENS more in total)."""
    answer: Callable[[str], str] | None = None
    """The answer's content from the last message's (default: `from <name>`)."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeBackend:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": backend.name, "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                backend.requests.append({"body": body, "authorization": self.headers.get("authorization")})
                if backend.status != 200:
                    self._send(backend.status, {"error": {"message": f"{backend.name} is down", "type": "server"}})
                    return
                completion = backend.completion_tokens
                self._send(
                    200,
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", backend.name),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": backend.content(body)},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": PROMPT_TOKENS,
                            "completion_tokens": completion,
                            "total_tokens": PROMPT_TOKENS + completion,
                        },
                    },
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def content(self, body: Mapping[str, Any]) -> str:
        if self.answer is None:
            return f"from {self.name}"
        messages = body.get("messages") or [{}]
        return self.answer(str(messages[-1].get("content", "")))

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@dataclass(frozen=True)
class Answer:
    """One HTTP answer of the proxy: status, body as text, headers with lower-case names."""

    status: int
    text: str
    headers: Mapping[str, str]

    def json(self) -> Any:
        try:
            return json.loads(self.text or "{}")
        except json.JSONDecodeError:
            return {}


@dataclass
class Proxy:
    url: str
    backends: dict[str, FakeBackend]
    log: Path

    def request(self, method: str, path: str, key: str | None, body: Any = None) -> Answer:
        """One request with `Authorization: Bearer <key>` (none without a key); a JSON body for writes."""
        data = None
        if body is not None or method in ("POST", "PUT", "PATCH"):
            data = json.dumps({} if body is None else body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            headers={"content-type": "application/json", **({"authorization": f"Bearer {key}"} if key else {})},
            method=method,
        )
        try:
            with opener().open(request, timeout=REQUEST_SECONDS) as response:
                return Answer(response.status, response.read().decode(errors="replace"), _headers(response))
        except urllib.error.HTTPError as err:
            return Answer(err.code, err.read().decode(errors="replace"), _headers(err))

    def chat_answer(self, model: str, key: str | None) -> Answer:
        return self.request(
            "POST", "/v1/chat/completions", key, {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        )

    def chat(self, model: str, key: str | None) -> tuple[int, dict[str, Any]]:
        answer = self.chat_answer(model, key)
        return answer.status, answer.json()


def _headers(response: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in response.headers.items()}


def opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def proxy_env(tmp: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith(("REDIS_", "LITELLM_", "OPENAI_", "ANTHROPIC_", "AWS_")) or k == "DATABASE_URL")
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    # The pod's own environment (config.PROXY_ENV), the UI folder in the test's temporary folder.
    env.update(PROXY_ENV, LITELLM_UI_PATH=str(tmp / "ui"))
    env.update(
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        HOME=str(tmp),
        PYTHONUNBUFFERED="1",
    )
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def point_at_backends(
    config: dict[str, Any], backends: Mapping[str, FakeBackend], provider: FakeBackend | None
) -> None:
    """The only edit to a generated config: each route's address becomes its fake backend's (in place).
    Fail fast in tests too: no retry before a fallback."""
    for entry in config["model_list"]:
        params = entry["litellm_params"]
        if entry["model_name"].startswith(FALLBACK_PREFIX):
            assert provider is not None, "a fallback route needs the fake provider"
            params["api_base"] = provider.url
        else:
            params["api_base"] = backends[params["model"].split("/", 1)[1]].url
    config["router_settings"]["num_retries"] = 0


@contextmanager
def running_proxy(
    tmp: Path,
    *,
    config: Mapping[str, Any],
    tenants: Mapping[str, Any],
    keys: Mapping[str, str],
    env: Mapping[str, str],
) -> Iterator[tuple[str, Path]]:
    """The proxy with config.yaml, tenants.json and the auth module as the ConfigMap mounts them and each key's
    digest as its Secret's file; yields its URL and log once /health/readiness answers. Killed by process group."""
    if os.environ.get("MODELYARD_SKIP_PROXY"):
        pytest.skip("MODELYARD_SKIP_PROXY is set")
    config_dir, keys_dir = tmp / "config", tmp / "keys"
    config_dir.mkdir()
    keys_dir.mkdir()
    (config_dir / "config.yaml").write_text(yaml.safe_dump(dict(config)))
    (config_dir / "tenants.json").write_text(json.dumps(tenants))
    (config_dir / f"{AUTH_MODULE}.py").write_text(AUTH_MODULE_FILE.read_text())
    for name, key in keys.items():
        (keys_dir / name).write_text(key_digest(key))
    full_env = (
        proxy_env(tmp)
        | dict(env)
        | {"MODELYARD_TENANTS": str(config_dir / "tenants.json"), "MODELYARD_KEYS_DIR": str(keys_dir)}
    )
    port = free_port()
    log = tmp / "proxy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "litellm.proxy.proxy_cli",
                "--config",
                str(config_dir / "config.yaml"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--num_workers",
                "1",
            ],
            cwd=tmp,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"the proxy exited ({process.returncode}):\n{log.read_text()[-4000:]}")
            try:
                with opener().open(f"{url}/health/readiness", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the proxy was not ready in {START_SECONDS} s:\n{log.read_text()[-4000:]}")
            time.sleep(0.3)
        yield url, log
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass
