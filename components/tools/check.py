"""`modelyard check`: after `pulumi up`, one streamed chat request through the gateway (or straight to a model
server), reporting time to first token, the whole answer's time and the output tokens per second.

It runs where the endpoint is reachable: inside the VPC, through a VPN, or with
`kubectl port-forward -n gateway svc/<gateway> 4000:4000`. Exit 0 when a first token arrives within
--ttft-budget seconds, 3 when the endpoint refuses, fails or is too slow, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from components.errors import EnvironmentBlocked, ExitCode, InputError, Problem


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    ttft_seconds: float
    total_seconds: float
    output_chunks: int
    text: str

    @property
    def chunks_per_second(self) -> float:
        generating = self.total_seconds - self.ttft_seconds
        return self.output_chunks / generating if generating > 0 else float("inf")


def stream_chat(
    *, endpoint: str, model: str, key: str | None, prompt: str, max_tokens: int, timeout: float
) -> CheckResult:
    """POST /v1/chat/completions with stream=true and time the server-sent events as they arrive."""
    body = json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "stream": True,
        }
    ).encode()
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"{endpoint.rstrip('/')}/v1/chat/completions", data=body, headers=headers)
    start = time.perf_counter()
    first: float | None = None
    chunks = 0
    text: list[str] = []
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            for raw in response:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    break
                delta = json.loads(data)["choices"][0].get("delta", {}).get("content") or ""
                if delta:
                    chunks += 1
                    text.append(delta)
                    if first is None:
                        first = time.perf_counter() - start
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise EnvironmentBlocked(f"{endpoint} answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise EnvironmentBlocked(f"cannot reach {endpoint}: {exc}") from None
    except (json.JSONDecodeError, KeyError, IndexError) as exc:
        raise EnvironmentBlocked(f"{endpoint} sent something that is not an OpenAI chat stream: {exc}") from None
    total = time.perf_counter() - start
    if first is None:
        raise EnvironmentBlocked(f"{endpoint} streamed no token for model {model!r}")
    return CheckResult(ttft_seconds=first, total_seconds=total, output_chunks=chunks, text="".join(text))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="modelyard check", description=__doc__)
    parser.add_argument("--endpoint", required=True, help="the gateway's (or a model server's) base URL")
    parser.add_argument("--model", required=True, help="the model name clients ask for (a key of modelyard:models)")
    parser.add_argument("--key-env", default="MODELYARD_API_KEY", help="environment variable holding the API key")
    parser.add_argument("--prompt", default="Reply with one short sentence: are you up?")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--ttft-budget", type=float, default=2.5, help="seconds; 2.5 is the alerts' TTFT objective")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole request")
    args = parser.parse_args(argv)
    if not args.endpoint.startswith(("http://", "https://")):
        raise InputError(Problem(path="--endpoint", message=f"{args.endpoint!r} is not an http(s) URL"))
    for option, value in (
        ("--max-tokens", args.max_tokens),
        ("--ttft-budget", args.ttft_budget),
        ("--timeout", args.timeout),
    ):
        if value <= 0:
            raise InputError(Problem(path=option, message=f"must be positive, got {value}"))
    result = stream_chat(
        endpoint=args.endpoint,
        model=args.model,
        key=os.environ.get(args.key_env),
        prompt=args.prompt,
        max_tokens=args.max_tokens,
        timeout=args.timeout,
    )
    print(
        f"model {args.model}: first token after {result.ttft_seconds:.3f} s, answer in {result.total_seconds:.3f} s, "
        f"{result.output_chunks} chunks ({result.chunks_per_second:.1f}/s)"
    )
    print(f"  {result.text.strip()[:200]}")
    if result.ttft_seconds > args.ttft_budget:
        raise EnvironmentBlocked(
            f"time to first token {result.ttft_seconds:.3f} s is above the budget of {args.ttft_budget} s"
        )
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
