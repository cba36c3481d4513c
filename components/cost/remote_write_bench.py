"""Benchmark: bytes a Prometheus remote write puts on the wire per sample.
`python -m components.cost.remote_write_bench [--seconds N] [--interval S]`.

The cost model prices the metrics a cell without NAT sends across regions to the deployment's workspace
(docs/cost.md, "Metrics across regions") as samples x bytes per sample. This measures the second factor with the
real engines: a Prometheus (the Debian package, as CI installs it for promtool) scrapes a node exporter and itself
every --interval (the kit's 30 s by default: the Prometheus Operator's) and remote-writes to a local receiver that
counts the bytes of every request body it is sent (snappy-compressed protobuf, as Amazon Managed Service for
Prometheus receives them). It prints the receiver's bytes over Prometheus's own count of samples sent, and the series
the head block holds. Labels travel with every series of every request, so the figure depends on the interval:
measure at the one your cells scrape at. Needs `prometheus` and `prometheus-node-exporter` on PATH
(`apt-get install prometheus prometheus-node-exporter`).
"""

from __future__ import annotations

import argparse
import http.server
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Receiver(http.server.BaseHTTPRequestHandler):
    received = 0
    requests = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with _Receiver.lock:
            _Receiver.received += len(body)
            _Receiver.requests += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def _query(port: int, expr: str) -> float:
    url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(expr)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        result = json.load(response)["data"]["result"]
    return sum(float(r["value"][1]) for r in result)


def _wait(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing ready on port {port} after {seconds} s")


def measure(seconds: int, interval: int = 30) -> dict[str, float]:
    exporter_port, prometheus_port = _free_port(), _free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    receiver_port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": f"{interval}s"},
                    "scrape_configs": [
                        {"job_name": "node", "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]},
                        {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{prometheus_port}"]}]},
                    ],
                    "remote_write": [{"url": f"http://127.0.0.1:{receiver_port}/api/v1/write"}],
                }
            )
        )
        exporter = subprocess.Popen(
            ["prometheus-node-exporter", f"--web.listen-address=127.0.0.1:{exporter_port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        prometheus = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(prometheus_port, 30)
            time.sleep(seconds)
            sent = _query(prometheus_port, "prometheus_remote_storage_samples_total")
            series = _query(prometheus_port, "prometheus_tsdb_head_series")
            with _Receiver.lock:
                received, requests = _Receiver.received, _Receiver.requests
        finally:
            for process in (prometheus, exporter):
                process.terminate()
                process.wait(timeout=30)
            server.shutdown()
    return {
        "seconds": seconds,
        "interval": interval,
        "series": series,
        "samples_sent": sent,
        "bytes_received": received,
        "requests": requests,
        "bytes_per_sample": received / sent if sent else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.cost.remote_write_bench", description=__doc__)
    parser.add_argument("--seconds", type=int, default=300, help="how long to let Prometheus write (default 300)")
    parser.add_argument("--interval", type=int, default=30, help="scrape interval in seconds (default 30)")
    args = parser.parse_args(argv)
    missing = [tool for tool in ("prometheus", "prometheus-node-exporter") if shutil.which(tool) is None]
    if missing:
        print(f"remote_write_bench: {', '.join(missing)} not on PATH (apt-get install {' '.join(missing)})")
        return 2
    m = measure(args.seconds, args.interval)
    print(
        f"{m['samples_sent']:,.0f} samples of {m['series']:,.0f} series in {m['requests']:,} requests, "
        f"{m['bytes_received']:,} bytes on the wire in {m['seconds']} s "
        f"(scraped every {m['interval']} s): "
        f"{m['bytes_per_sample']:.2f} bytes per sample"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
