"""`modelyard models push|verify` against moto's S3 on 127.0.0.1 (multipart included), and `models pull`
against a local fake of the Hugging Face hub's file API on loopback. No network."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest

from components.cli import main
from components.tools import models
from components.tools.aws import Clients
from components.tools.models import MANIFEST, Target

ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"
BUCKET = f"modelyard-pilot-models-{ACCOUNT}"  # the shipped stack `pilot` of project modelyard
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def session(moto_endpoint: str) -> boto3.Session:
    return boto3.Session(region_name=REGION)


@pytest.fixture
def bucket(session: boto3.Session) -> Iterator[Any]:
    """The pilot stack's model bucket, empty, removed afterwards (cheaper than resetting moto)."""
    s3 = session.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    yield s3
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    for upload in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    s3.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def calls(session: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every upload call the tools make, as (operation, key); the tools' clients come from this session."""
    seen: list[tuple[str, str]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        seen.append((model.name, params.get("Key", "")))

    events = session.events
    for op in ("PutObject", "CreateMultipartUpload", "UploadPart", "DeleteObject"):
        events.register(f"provide-client-params.s3.{op}", record, unique_id=f"record-{op}")
    monkeypatch.setattr(models.aws, "open_clients", lambda profile, region: Clients(session))
    yield seen
    for op in ("PutObject", "CreateMultipartUpload", "UploadPart", "DeleteObject"):
        events.unregister(f"provide-client-params.s3.{op}", unique_id=f"record-{op}")


def make_model(folder: Path) -> dict[str, bytes]:
    """A small model folder: a 6 MiB file (multipart at --part-size 5) and a few small ones, one nested."""
    contents = {
        "config.json": b'{"architectures": ["LlamaForCausalLM"]}',
        "model-00001-of-00002.safetensors": bytes(range(256)) * (6 * MIB // 256),
        "model-00002-of-00002.safetensors": b"w" * 70_000,
        "tokenizer/tokenizer.json": b'{"version": "1.0"}',
    }
    for name, data in contents.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return contents


def push(source: Path, *extra: str) -> int:
    return main(
        ["models", "push", str(source), "--stack", "pilot", "--name", "llama-3.1-8b", "--part-size", "5", *extra]
    )


def verify(*extra: str) -> int:
    return main(["models", "verify", "--stack", "pilot", "--name", "llama-3.1-8b", *extra])


def sent(calls: list[tuple[str, str]]) -> set[str]:
    prefix = "models/llama-3.1-8b/main/"
    return {key[len(prefix) :] for op, key in calls if op in ("PutObject", "CreateMultipartUpload")}


def test_push_writes_objects_then_the_manifest_last(bucket, calls, tmp_path, capsys):
    contents = make_model(tmp_path)
    assert push(tmp_path) == 0
    assert sent(calls) == {*contents, MANIFEST}
    uploads = [key for op, key in calls if op in ("PutObject", "CreateMultipartUpload")]
    assert uploads[-1].endswith(MANIFEST)  # written last: its presence means complete
    assert any(op == "UploadPart" for op, _ in calls)  # the 6 MiB file went up in parts
    manifest = json.loads(bucket.get_object(Bucket=BUCKET, Key=f"models/llama-3.1-8b/main/{MANIFEST}")["Body"].read())
    assert manifest["schema"] == "modelyard.manifest/v1"
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == {
        name: hashlib.sha256(data).hexdigest() for name, data in contents.items()
    }
    head = bucket.head_object(Bucket=BUCKET, Key="models/llama-3.1-8b/main/model-00001-of-00002.safetensors")
    assert head["Metadata"]["sha256"] == hashlib.sha256(contents["model-00001-of-00002.safetensors"]).hexdigest()
    captured = capsys.readouterr()
    assert "4 sent, 0 already there, manifest written" in captured.out
    assert "upload [" in captured.err  # the progress bar
    assert verify() == 0 and verify("--deep") == 0


def test_an_interrupted_push_resumes_with_only_the_missing_objects(bucket, calls, session, tmp_path, capsys):
    make_model(tmp_path)
    failing = "models/llama-3.1-8b/main/model-00002-of-00002.safetensors"

    def fail(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == failing:
            raise ConnectionResetError("connection lost mid-upload")

    session.events.register("provide-client-params.s3.PutObject", fail, unique_id="fail-one")
    try:
        assert push(tmp_path) == 3
    finally:
        session.events.unregister("provide-client-params.s3.PutObject", unique_id="fail-one")
    err = capsys.readouterr().err
    assert "1 of 4 uploads failed" in err and "model-00002-of-00002.safetensors" in err and "resumes" in err
    assert "Contents" not in bucket.list_objects_v2(Bucket=BUCKET, Prefix=f"models/llama-3.1-8b/main/{MANIFEST}")
    assert verify() == 3  # no manifest: incomplete

    calls.clear()
    assert push(tmp_path) == 0
    assert sent(calls) == {"model-00002-of-00002.safetensors", MANIFEST}
    assert "1 sent, 3 already there" in capsys.readouterr().out
    assert verify("--deep") == 0


def test_a_corrupted_local_file_is_caught_on_re_push(bucket, calls, tmp_path, capsys):
    make_model(tmp_path)
    assert push(tmp_path) == 0
    (tmp_path / "config.json").write_bytes(b'{"architectures": ["LlamaForCausalLM"]}  ')  # silently changed
    calls.clear()
    assert push(tmp_path) == 3
    err = capsys.readouterr().err
    assert "config.json: local" in err and "manifest" in err and "--force" in err
    assert sent(calls) == set()  # nothing overwritten


def test_force_replaces_a_revision_and_drops_stale_objects(bucket, calls, tmp_path, capsys):
    make_model(tmp_path)
    assert push(tmp_path) == 0
    (tmp_path / "tokenizer" / "tokenizer.json").unlink()
    (tmp_path / "config.json").write_text('{"new": true}')
    calls.clear()
    assert push(tmp_path, "--force") == 0
    assert sent(calls) == {"config.json", MANIFEST}
    keys = {o["Key"] for o in bucket.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert "models/llama-3.1-8b/main/tokenizer/tokenizer.json" not in keys
    assert verify("--deep") == 0


def test_pushing_the_same_folder_again_sends_nothing(bucket, calls, tmp_path, capsys):
    make_model(tmp_path)
    assert push(tmp_path) == 0
    calls.clear()
    assert push(tmp_path) == 0
    assert sent(calls) == set()
    assert "already complete" in capsys.readouterr().err


def test_verify_catches_a_changed_object(bucket, calls, tmp_path, capsys):
    contents = make_model(tmp_path)
    assert push(tmp_path) == 0
    capsys.readouterr()
    key = "models/llama-3.1-8b/main/model-00002-of-00002.safetensors"
    bucket.put_object(Bucket=BUCKET, Key=key, Body=b"x" * 70_000)  # same size, no sha256 metadata
    assert verify() == 3
    assert "model-00002-of-00002.safetensors: stored sha256 (none)" in capsys.readouterr().err
    # A sneaky change: same size, the original's sha256 metadata copied. Only --deep reads the bytes.
    original = hashlib.sha256(contents["model-00002-of-00002.safetensors"]).hexdigest()
    bucket.put_object(Bucket=BUCKET, Key=key, Body=b"y" * 70_000, Metadata={"sha256": original})
    assert verify() == 0
    assert verify("--deep") == 3
    assert "model-00002-of-00002.safetensors: content sha256" in capsys.readouterr().err
    bucket.delete_object(Bucket=BUCKET, Key="models/llama-3.1-8b/main/config.json")
    assert verify() == 3
    assert "config.json: missing" in capsys.readouterr().err
    # Pushing the revision again repairs what went missing, and only that.
    calls.clear()
    assert push(tmp_path) == 0
    assert sent(calls) == {"config.json", MANIFEST}
    assert verify() == 0


def test_push_follows_hugging_face_cache_symlinks(bucket, calls, tmp_path):
    blobs = tmp_path / "blobs"
    snapshot = tmp_path / "snapshots" / "abc123"
    blobs.mkdir()
    snapshot.mkdir(parents=True)
    data = b"weights" * 1000
    (blobs / "deadbeef").write_bytes(data)
    (snapshot / "model.safetensors").symlink_to(blobs / "deadbeef")
    assert push(snapshot) == 0
    obj = bucket.get_object(Bucket=BUCKET, Key="models/llama-3.1-8b/main/model.safetensors")
    assert obj["Body"].read() == data  # the blob's bytes, not a link


def test_bad_input_and_a_missing_bucket(session, calls, tmp_path, capsys):
    assert push(tmp_path / "nope") == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "broken").symlink_to(tmp_path / "missing-blob")
    assert push(tmp_path) == 2
    assert "broken symlink" in capsys.readouterr().err
    (tmp_path / "broken").unlink()
    (tmp_path / "a.bin").write_bytes(b"1")
    assert main(["models", "push", str(tmp_path), "--stack", "pilot", "--name", "bad/name"]) == 2
    assert push(tmp_path) == 3  # no bucket: the stack was never brought up
    assert "pulumi up --stack pilot" in capsys.readouterr().err


def test_no_credentials_exit_3(session, tmp_path, monkeypatch, capsys):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    (tmp_path / "a.bin").write_bytes(b"1")
    assert push(tmp_path) == 3
    assert "credentials" in capsys.readouterr().err


# --- pull against a local fake of the hub -------------------------------------------------------------

COMMIT = "0123456789abcdef0123456789abcdef01234567"
HUB_FILES = {
    "config.json": b'{"model_type": "llama"}',
    "model.safetensors": b"\x00\x01" * 5000,
    "original/consolidated.00.pth": b"a duplicate checkpoint",
}


class FakeHub(BaseHTTPRequestHandler):
    """The few endpoints snapshot_download uses: repo info, tree listing, HEAD and GET of resolve URLs."""

    known: ClassVar[set[str]] = {"meta-llama/Llama-3.1-8B-Instruct"}
    gated: ClassVar[set[str]] = {"meta-llama/Gated-Model"}
    token_seen: ClassVar[list[str | None]] = []

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _route(self, head: bool) -> None:
        path = self.path.split("?")[0]
        FakeHub.token_seen.append(self.headers.get("authorization"))
        parts = path.strip("/").split("/")
        repo = "/".join(parts[2:4]) if parts[:2] == ["api", "models"] else "/".join(parts[:2])
        if repo in self.gated:
            message = f"Access to model {repo} is restricted. You must have access to it and be authenticated."
            self._send(401, message.encode(), {"X-Error-Code": "GatedRepo", "X-Error-Message": message}, head)
            return
        if repo not in self.known:
            self._send(404, b"Repository not found", {"X-Error-Code": "RepoNotFound"}, head)
        elif parts[:2] == ["api", "models"] and parts[4] == "revision":
            body = {"id": repo, "sha": COMMIT, "siblings": [{"rfilename": name} for name in HUB_FILES]}
            self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"}, head)
        elif parts[:2] == ["api", "models"] and parts[4] == "tree":
            tree = [
                {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                for name, data in HUB_FILES.items()
            ]
            self._send(200, json.dumps(tree).encode(), {"Content-Type": "application/json"}, head)
        elif len(parts) >= 5 and parts[2] == "resolve":
            name = "/".join(parts[4:])
            data = HUB_FILES[name]
            etag = f'"{hashlib.sha1(data).hexdigest()}"'
            self._send(200, data, {"X-Repo-Commit": COMMIT, "ETag": etag}, head)
        else:
            self._send(404, b"not found", {"X-Error-Code": "RepoNotFound"}, head)

    def do_GET(self) -> None:
        self._route(head=False)

    def do_HEAD(self) -> None:
        self._route(head=True)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    FakeHub.token_seen.clear()
    yield endpoint
    server.shutdown()
    server.server_close()


def test_pull_copies_real_files_out_of_the_cache(hub, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    dest = tmp_path / "llama"
    cache = tmp_path / "cache"
    argv = ["models", "pull", "meta-llama/Llama-3.1-8B-Instruct", "--dest", str(dest), "--cache-dir", str(cache)]
    assert main([*argv, "--exclude", "original/*"]) == 0
    for name in ("config.json", "model.safetensors"):
        assert not (dest / name).is_symlink() and (dest / name).read_bytes() == HUB_FILES[name]
    assert not (dest / "original").exists()
    # The cache itself holds symlinks into its blob store; the copy does not.
    snapshot = next(cache.glob("models--meta-llama--Llama-3.1-8B-Instruct/snapshots/*"))
    assert (snapshot / "config.json").is_symlink()
    source = json.loads((dest / ".modelyard-source.json").read_text())
    assert source == {"repo": "meta-llama/Llama-3.1-8B-Instruct", "revision": "main", "commit": COMMIT}
    assert "Bearer hf_test_token" in FakeHub.token_seen
    assert COMMIT in capsys.readouterr().out
    # The pulled folder names itself: push defaults --name to the catalog's name for the repo.
    assert models._default_name(dest) == "llama-3.1-8b"


def test_pull_explains_a_gated_model(hub, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    code = main(
        ["models", "pull", "meta-llama/Gated-Model", "--dest", str(tmp_path / "g"), "--cache-dir", str(tmp_path / "c")]
    )
    assert code == 3
    err = capsys.readouterr().err
    assert "gated model" in err and "accept its license" in err and "HF_TOKEN" in err and "hf auth login" in err


def test_pull_of_an_unknown_repo_is_bad_input(hub, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    code = main(["models", "pull", "nobody/nothing", "--dest", str(tmp_path / "n"), "--cache-dir", str(tmp_path / "c")])
    assert code == 2
    assert "does not exist on the hub" in capsys.readouterr().err


def test_push_target_keys(session):
    target = Target(Clients(session), "b", "llama-3.1-8b", "v1")
    assert target.key("a/b.bin") == "models/llama-3.1-8b/v1/a/b.bin"
