"""`modelyard models pull|push|verify`: weights from the Hugging Face hub into the stack's model bucket.

Bucket layout (docs/models.md#the-bucket-layout): `models/<name>/<revision>/<files>` and
`models/<name>/<revision>/manifest.json`.
The manifest lists every file with its size and SHA-256 and is written last: its presence means the
revision is complete, and serving waits for it. Each object carries its SHA-256 in the user metadata
`x-amz-meta-sha256`, which is how a second push skips what is already there (resume at object
granularity: boto3's managed transfers cannot resume a half-done multipart upload) and how `verify`
checks without downloading (`--deep` downloads and hashes). S3's own SHA-256 of a multipart object is
composite (a hash of part hashes), so the kit's manifest is the reference, not S3's checksum.

Exit codes: 0 done; 2 bad input (arguments, the source folder); 3 the environment blocks it (no
credentials, no bucket, a different manifest already there, a mismatch found by verify, a gated model).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import botocore.exceptions

if TYPE_CHECKING:
    from components.settings import Settings

from components.errors import EnvironmentBlocked, ExitCode, InputError, Problem
from components.tools import aws
from components.tools.aws import (
    Clients,
    caller_identity,
    error_code,
    http_status,
    model_bucket_name,
    replica_bucket_name,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "modelyard.manifest/v1"
SOURCE_FILE = ".modelyard-source.json"  # written by `models pull`: the repo and commit the files came from
SKIPPED_DIRS = {".cache", ".git", ".huggingface"}
NAME_PATTERN = "1-128 letters, digits, '.', '_' or '-'"
MIB = 1024 * 1024
HASH_CHUNK = 8 * MIB


# --- local files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalFile:
    path: str  # POSIX path relative to the source folder: the object key below the revision prefix
    real: Path  # the file's bytes (a Hugging Face cache snapshot is symlinks into a blob store: resolved)
    size: int


def _valid_name(value: str) -> bool:
    return 1 <= len(value) <= 128 and all(c.isalnum() or c in "._-" for c in value) and value not in (".", "..")


def scan(source: Path) -> list[LocalFile]:
    """Every file below `source`, symlinks followed; SKIPPED_DIRS and SOURCE_FILE left out."""
    if not source.is_dir():
        raise InputError(Problem(path="SRC", message=f"{source} is not a folder"))
    files: list[LocalFile] = []
    broken: list[Problem] = []
    for folder, dirs, names in os.walk(source, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(names):
            path = Path(folder) / name
            relative = path.relative_to(source).as_posix()
            if relative == SOURCE_FILE:
                continue
            try:
                real = path.resolve(strict=True)
            except (FileNotFoundError, RuntimeError):
                broken.append(Problem(path=str(path), message="a broken symlink (its blob is missing from the cache)"))
                continue
            if real.is_file():
                files.append(LocalFile(relative, real, real.stat().st_size))
    if broken:
        raise InputError(broken, heading=f"{source} has files that cannot be read")
    if any(f.path == MANIFEST for f in files):
        raise InputError(
            Problem(
                path=str(source / MANIFEST), message="the kit writes manifest.json itself; rename or remove this file"
            )
        )
    if not files:
        raise InputError(Problem(path="SRC", message=f"{source} holds no files"))
    return files


def sha256_of(stream: IO[bytes], progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(HASH_CHUNK):
        digest.update(chunk)
        if progress:
            progress(len(chunk))
    return digest.hexdigest()


# --- progress ----------------------------------------------------------------------------------------


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} TiB"


class Progress:
    """A progress bar on stderr (a line per update on a terminal, a line per file elsewhere). Thread-safe."""

    def __init__(self, label: str, total_bytes: int, total_files: int, stream: IO[str] | None = None) -> None:
        self.label = label
        self.total = max(total_bytes, 1)
        self.total_files = total_files
        self.done = 0
        self.files = 0
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()

    def advance(self, count: int) -> None:
        with self._lock:
            self.done += count
            now = time.monotonic()
            if self.tty and now - self._last > 0.2:
                self._last = now
                self._draw("\r")

    def file_done(self) -> None:
        with self._lock:
            self.files += 1
            self._draw("\r" if self.tty else "")
            if not self.tty:
                self.stream.write("\n")

    def finish(self) -> None:
        with self._lock:
            if self.tty:
                self.stream.write("\n")
            self.stream.flush()

    def _draw(self, prefix: str) -> None:
        share = min(self.done / self.total, 1.0)
        bar = "#" * int(share * 30)
        rate = self.done / max(time.monotonic() - self.started, 1e-6)
        self.stream.write(
            f"{prefix}{self.label} [{bar:<30}] {share:4.0%} {_human(self.done)}/{_human(self.total)} "
            f"{self.files}/{self.total_files} files {_human(rate)}/s"
        )
        self.stream.flush()


# --- the bucket --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    clients: Clients
    bucket: str
    name: str
    revision: str

    @property
    def prefix(self) -> str:
        return f"models/{self.name}/{self.revision}/"

    def key(self, path: str) -> str:
        return self.prefix + path

    @property
    def s3(self) -> Any:
        return self.clients("s3")


def _open_target(args: argparse.Namespace, name: str, revision: str) -> Target:
    from components.plan.run import load_settings

    _, settings = load_settings(args.project_dir, args.stack)
    return _target(args, settings, name, revision)


def _target(args: argparse.Namespace, settings: Settings, name: str, revision: str) -> Target:
    clients = aws.open_clients(args.profile, settings.region)
    identity = caller_identity(clients)
    bucket = model_bucket_name(settings.project, settings.deployment, identity["account"])
    try:
        clients("s3").head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        if http_status(exc) == 404:
            raise EnvironmentBlocked(
                f"the stack's model bucket {bucket} does not exist: run `pulumi up --stack {args.stack}` first "
                "(the bucket is part of the stack)"
            ) from exc
        if http_status(exc) != 403:
            raise EnvironmentBlocked(f"cannot reach bucket {bucket}: {error_code(exc)}") from exc
        # 403: a role limited to models/* (the kit's writer role) may not HeadBucket; the object calls decide.
        print(f"note: HeadBucket on {bucket} was refused (403); going on with object calls", file=sys.stderr)
    models = [key for key, m in settings.models.items() if _catalog_name(m.model) == name and m.revision == revision]
    if models:
        print(f"stack {args.stack}: models {', '.join(models)} serve {name} revision {revision}", file=sys.stderr)
    else:
        print(
            f"note: no model of stack {args.stack} points at {name} revision {revision} yet; set "
            f"modelyard:models.<key>.model to {name} and .revision to {revision} (docs/models.md)",
            file=sys.stderr,
        )
    return Target(clients, bucket, name, revision)


def _catalog_name(model: str) -> str:
    from components.catalog import UnknownNameError, resolve_model

    try:
        return resolve_model(model).name
    except UnknownNameError:
        return model


def read_manifest(target: Target) -> dict[str, Any] | None:
    try:
        body = target.s3.get_object(Bucket=target.bucket, Key=target.key(MANIFEST))["Body"].read()
    except botocore.exceptions.ClientError as exc:
        # Without an unconditioned s3:ListBucket, S3 answers 403 rather than 404 for a missing key.
        if error_code(exc) in ("NoSuchKey", "404") or http_status(exc) in (403, 404):
            return None
        raise
    try:
        manifest = json.loads(body)
        manifest_files(manifest)  # the shape check
    except (ValueError, KeyError, TypeError) as exc:
        raise EnvironmentBlocked(
            f"s3://{target.bucket}/{target.key(MANIFEST)} is not a manifest the kit wrote"
        ) from exc
    return dict(manifest)


def manifest_files(manifest: Mapping[str, Any]) -> dict[str, tuple[int, str]]:
    return {f["path"]: (int(f["size"]), str(f["sha256"])) for f in manifest["files"]}


def head(target: Target, path: str) -> tuple[int, str] | None:
    """(size, stored sha256 metadata) of an object, None when absent."""
    try:
        answer = target.s3.head_object(Bucket=target.bucket, Key=target.key(path))
    except botocore.exceptions.ClientError as exc:
        if http_status(exc) in (403, 404):  # 403: a missing key, for a caller without a plain s3:ListBucket
            return None
        raise
    return int(answer["ContentLength"]), str(answer.get("Metadata", {}).get("sha256", ""))


def _list_keys(target: Target) -> list[str]:
    keys: list[str] = []
    for page in target.s3.get_paginator("list_objects_v2").paginate(Bucket=target.bucket, Prefix=target.prefix):
        keys.extend(obj["Key"][len(target.prefix) :] for obj in page.get("Contents", []))
    return keys


# --- push --------------------------------------------------------------------------------------------


@dataclass
class PushResult:
    sent: list[str]
    skipped: list[str]


def push(
    source: Path,
    target: Target,
    *,
    force: bool = False,
    concurrency: int = 8,
    part_size_mib: int = 64,
    stream: IO[str] | None = None,
) -> PushResult:
    from boto3.s3.transfer import TransferConfig, create_transfer_manager
    from s3transfer.subscribers import BaseSubscriber

    files = scan(source)
    total = sum(f.size for f in files)
    hashing = Progress("hashing", total, len(files), stream)
    digests: dict[str, str] = {}
    for f in files:
        with f.real.open("rb") as handle:
            digests[f.path] = sha256_of(handle, hashing.advance)
        hashing.file_done()
    hashing.finish()
    local = {f.path: (f.size, digests[f.path]) for f in files}

    existing = read_manifest(target)
    same_manifest = existing is not None and manifest_files(existing) == local
    if existing is not None and not same_manifest:
        pushed = manifest_files(existing)
        differences = _differences(local, pushed)
        if not force:
            raise EnvironmentBlocked(
                f"s3://{target.bucket}/{target.prefix} already holds a complete revision whose manifest differs "
                f"from {source}:\n"
                + "\n".join(f"  - {d}" for d in differences)
                + "\nA changed local file means a corrupted copy or other weights: re-download it, or push the "
                "new weights as another --revision; --force replaces this revision (serving pods that start "
                "meanwhile see no manifest and wait)"
            )
        # Replacing: the revision is incomplete from now until the new manifest lands.
        _delete(target, MANIFEST)

    to_send: list[LocalFile] = []
    skipped: list[str] = []
    for f in files:
        there = head(target, f.path)
        if there == (f.size, digests[f.path]):
            skipped.append(f.path)
        else:
            to_send.append(f)
    if same_manifest and not to_send:
        print(
            f"s3://{target.bucket}/{target.prefix} is already complete: its manifest and objects match {source}",
            file=stream or sys.stderr,
        )
        return PushResult(sent=[], skipped=sorted(skipped))
    # With the same manifest, what is sent repairs objects that went missing or changed in the bucket.

    progress = Progress("upload", sum(f.size for f in to_send), len(to_send), stream)

    class _Subscriber(BaseSubscriber):
        def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
            progress.advance(bytes_transferred)

        def on_done(self, future: Any, **kwargs: Any) -> None:
            progress.file_done()

    config = TransferConfig(
        multipart_threshold=part_size_mib * MIB,
        multipart_chunksize=part_size_mib * MIB,
        max_concurrency=concurrency,
    )
    failures: list[str] = []
    with create_transfer_manager(target.s3, config) as manager:
        futures = [
            (
                f,
                manager.upload(
                    str(f.real),
                    target.bucket,
                    target.key(f.path),
                    extra_args={"Metadata": {"sha256": digests[f.path]}},
                    subscribers=[_Subscriber()],
                ),
            )
            for f in to_send
        ]
        for f, future in futures:
            try:
                future.result()
            except Exception as exc:  # a failed transfer: report every one, then stop before the manifest
                failures.append(f"{f.path}: {exc}")
    progress.finish()
    if failures:
        raise EnvironmentBlocked(
            f"{len(failures)} of {len(to_send)} uploads failed; the manifest was not written, so the revision "
            "stays incomplete. Run the same command again: it resumes, skipping objects already uploaded.\n"
            + "\n".join(f"  - {line}" for line in failures)
        )

    # Check what landed before declaring the revision complete.
    wrong = [f.path for f in to_send if head(target, f.path) != (f.size, digests[f.path])]
    if wrong:
        raise EnvironmentBlocked(f"objects do not match after upload (size or sha256): {', '.join(wrong)}; run again")
    if force and existing is not None:
        stale = sorted(set(_list_keys(target)) - set(local) - {MANIFEST})
        for path in stale:
            _delete(target, path)

    manifest = {
        "schema": MANIFEST_SCHEMA,
        "name": target.name,
        "revision": target.revision,
        "source": _source_info(source),
        "total_bytes": total,
        "files": [{"path": p, "size": s, "sha256": h} for p, (s, h) in sorted(local.items())],
    }
    body = json.dumps(manifest, indent=1, sort_keys=True).encode()
    target.s3.put_object(
        Bucket=target.bucket,
        Key=target.key(MANIFEST),
        Body=body,
        ContentType="application/json",
        # The manifest's own SHA-256: the check at every server start trusts the manifest only when it matches.
        Metadata={"sha256": hashlib.sha256(body).hexdigest()},
    )
    return PushResult(sent=sorted(f.path for f in to_send), skipped=sorted(skipped))


def _delete(target: Target, path: str) -> None:
    try:
        target.s3.delete_object(Bucket=target.bucket, Key=target.key(path))
    except botocore.exceptions.ClientError as exc:
        raise EnvironmentBlocked(
            f"--force could not delete s3://{target.bucket}/{target.key(path)} ({error_code(exc)}): replacing a "
            "revision needs s3:DeleteObject, which the kit's writer role does not have; use an admin principal, "
            "or push under a new --revision"
        ) from exc


def _differences(local: Mapping[str, tuple[int, str]], pushed: Mapping[str, tuple[int, str]]) -> list[str]:
    lines = []
    for path in sorted(set(local) | set(pushed)):
        if path not in pushed:
            lines.append(f"{path}: only in the local folder")
        elif path not in local:
            lines.append(f"{path}: only in the pushed manifest")
        elif local[path] != pushed[path]:
            (ls, lh), (ps, ph) = local[path], pushed[path]
            lines.append(f"{path}: local {ls} bytes sha256 {lh[:12]}..., manifest {ps} bytes sha256 {ph[:12]}...")
    return lines


def _source_info(source: Path) -> dict[str, str]:
    marker = source / SOURCE_FILE
    if marker.is_file():
        try:
            data = json.loads(marker.read_text(encoding="utf-8"))
            return {k: str(v) for k, v in data.items() if k in ("repo", "revision", "commit")}
        except ValueError:
            return {}
    return {}


# --- verify ------------------------------------------------------------------------------------------


def verify(target: Target, *, deep: bool = False, stream: IO[str] | None = None) -> list[str]:
    """Mismatches between the bucket's objects and its manifest (empty: all good)."""
    manifest = read_manifest(target)
    if manifest is None:
        raise EnvironmentBlocked(
            f"s3://{target.bucket}/{target.key(MANIFEST)} does not exist: the revision was never pushed, or a push "
            "did not finish (run `modelyard models push` again)"
        )
    expected = manifest_files(manifest)
    progress = Progress("verify", sum(s for s, _ in expected.values()) if deep else 0, len(expected), stream)
    problems: list[str] = []
    for path, (size, sha) in sorted(expected.items()):
        there = head(target, path)
        if there is None:
            problems.append(f"{path}: missing")
        elif there[0] != size:
            problems.append(f"{path}: {there[0]} bytes, the manifest says {size}")
        elif there[1] != sha:
            problems.append(f"{path}: stored sha256 {there[1][:12] or '(none)'}..., the manifest says {sha[:12]}...")
        elif deep:
            body = target.s3.get_object(Bucket=target.bucket, Key=target.key(path))["Body"]
            actual = sha256_of(body, progress.advance)
            if actual != sha:
                problems.append(f"{path}: content sha256 {actual[:12]}..., the manifest says {sha[:12]}...")
        progress.file_done()
    progress.finish()
    return problems


def verify_replicas(
    source: Target, replicas: Mapping[str, Target], *, deep: bool = False, stream: IO[str] | None = None
) -> list[str]:
    """Mismatches in each replica (by region): its manifest must be the source's, and its objects must match it."""
    expected = read_manifest(source)
    problems: list[str] = []
    for region, target in sorted(replicas.items()):
        where = f"replica {region} (s3://{target.bucket}/{target.prefix})"
        manifest = read_manifest(target)
        if manifest is None:
            problems.append(
                f"{where}: no {MANIFEST}: not replicated yet, or pushed before replication was set up (S3 replicates "
                "new objects only: copy older ones with S3 Batch Replication, docs/regions.md#existing-objects)"
            )
        elif manifest != expected:
            problems.append(
                f"{where}: its {MANIFEST} differs from the source's: replication is pending or failed for the last "
                "push (see the source objects' replication status)"
            )
        else:
            problems += [f"{where}: {p}" for p in verify(target, deep=deep, stream=stream)]
    return problems


# --- pull --------------------------------------------------------------------------------------------


def pull(
    repo: str,
    revision: str | None,
    dest: Path,
    *,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
    exclude: list[str] | None = None,
) -> dict[str, str]:
    """Download a snapshot through the hub's cache, then copy its real files (not symlinks) into `dest`."""
    import shutil

    from huggingface_hub import get_token, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    token = get_token()  # HF_TOKEN, or what `hf auth login` stored
    login_hint = "export HF_TOKEN=<a read token from https://huggingface.co/settings/tokens> or run `hf auth login`"
    try:
        snapshot = Path(
            snapshot_download(
                repo_id=repo,
                revision=revision,
                endpoint=endpoint,
                cache_dir=cache_dir,
                ignore_patterns=exclude or None,
            )
        )
    except GatedRepoError as exc:
        who = "your token's account has not been granted access" if token else "no Hugging Face token was found"
        raise EnvironmentBlocked(
            f"{repo} is a gated model and {who}. Open https://huggingface.co/{repo}, accept its license "
            f"(approval may take a while), then {login_hint if not token else 'retry with the same token'}"
        ) from exc
    except RevisionNotFoundError as exc:
        raise InputError(
            Problem(path="--revision", message=f"{revision!r} is not a branch, tag or commit of {repo}")
        ) from exc
    except RepositoryNotFoundError as exc:
        raise InputError(
            Problem(
                path="REPO",
                message=f"{repo} does not exist on the hub, or is private and "
                f"{'your token cannot see it' if token else 'no token was found (' + login_hint + ')'}",
            )
        ) from exc
    except LocalEntryNotFoundError as exc:
        raise EnvironmentBlocked(
            f"cannot reach the Hugging Face hub and {repo} is not in the local cache: {exc}"
        ) from exc
    except HfHubHTTPError as exc:
        raise EnvironmentBlocked(f"the hub refused the download of {repo}: {exc}") from exc

    commit = snapshot.name
    dest.mkdir(parents=True, exist_ok=True)
    files = scan(snapshot)
    progress = Progress("copy", sum(f.size for f in files), len(files))
    for f in files:
        target = dest / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        shutil.copyfile(f.real, target)  # the blob's bytes, never the symlink
        progress.advance(f.size)
        progress.file_done()
    progress.finish()
    info = {"repo": repo, "revision": revision or "main", "commit": commit}
    (dest / SOURCE_FILE).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return info


# --- command line ------------------------------------------------------------------------------------


def _stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="a stack of stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--profile", help="an AWS CLI profile (default: boto3's credential chain)")
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=PROJECT_ROOT,
        metavar="DIR",
        help="the folder holding Pulumi.yaml and the stacks (default: this kit)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelyard models", description="Move model weights: hub -> folder -> bucket."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("pull", help="download a model from the Hugging Face hub into a folder (real files)")
    p.add_argument("repo", metavar="REPO", help="a hub repository id, such as meta-llama/Llama-3.1-8B-Instruct")
    p.add_argument("--revision", help="a branch, tag or commit (default: main)")
    p.add_argument("--dest", type=Path, help="the folder to fill (default: ./<repo name>)")
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip files matching this pattern (repeatable), e.g. 'original/*' (Llama's duplicate checkpoint)",
    )
    p.add_argument("--cache-dir", type=Path, help="the hub's cache (default: HF_HUB_CACHE, ~/.cache/huggingface/hub)")

    p = commands.add_parser("push", help="upload a folder to models/<name>/<revision>/ in the stack's bucket")
    p.add_argument("source", type=Path, metavar="SRC", help="the model's folder (symlinks are followed)")
    _stack_options(p)
    p.add_argument(
        "--name",
        help="the model's name in the bucket (default: the catalog name of the pulled repo, else the folder's name)",
    )
    p.add_argument("--revision", default="main", help="the revision to push as (default: main)")
    p.add_argument("--force", action="store_true", help="replace a complete revision whose manifest differs")
    p.add_argument("--concurrency", type=int, default=8, help="parallel transfers (default 8)")
    p.add_argument("--part-size", type=int, default=64, metavar="MIB", help="multipart part size (default 64, min 5)")

    p = commands.add_parser("verify", help="check the bucket's objects against the revision's manifest")
    _stack_options(p)
    p.add_argument("--name", required=True, help="the model's name in the bucket")
    p.add_argument("--revision", default="main", help="the revision (default: main)")
    p.add_argument("--deep", action="store_true", help="download and hash every object, not only its metadata")
    p.add_argument(
        "--replicas",
        action="store_true",
        help="check the revision in every replica of the model bucket as well (storage.replicas)",
    )
    return parser


def _default_name(source: Path) -> str:
    info = _source_info(source)
    if "repo" in info:
        name = _catalog_name(info["repo"])
        if _valid_name(name):
            return name
    return source.resolve().name


def _check_name(option: str, value: str) -> None:
    if not _valid_name(value):
        raise InputError(Problem(path=option, message=f"{value!r} is not a valid name: {NAME_PATTERN}"))


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        # An AWS refusal or an unreachable endpoint is the environment's, not a fault of the kit.
        raise EnvironmentBlocked(f"AWS refused or could not be reached: {exc}") from exc


def _run(args: argparse.Namespace) -> int:
    if args.command == "pull":
        dest = args.dest or Path(args.repo.rstrip("/").split("/")[-1])
        info = pull(
            args.repo,
            args.revision,
            dest,
            endpoint=os.environ.get("HF_ENDPOINT") or None,
            cache_dir=args.cache_dir,
            exclude=args.exclude,
        )
        print(f"{info['repo']} at commit {info['commit']} is in {dest}")
        print(f"next: modelyard models push {dest} --stack <stack> --revision {info['revision']}")
        return ExitCode.OK

    if args.command == "push":
        if not 5 <= args.part_size <= 5 * 1024:
            raise InputError(Problem(path="--part-size", message="S3 parts are 5 MiB to 5 GiB: give 5 to 5120"))
        if not 1 <= args.concurrency <= 64:
            raise InputError(Problem(path="--concurrency", message="give 1 to 64"))
        name = args.name or _default_name(args.source)
        _check_name("--name", name)
        _check_name("--revision", args.revision)
        scan(args.source)  # bad input before any AWS call
        target = _open_target(args, name, args.revision)
        result = push(args.source, target, force=args.force, concurrency=args.concurrency, part_size_mib=args.part_size)
        print(
            f"s3://{target.bucket}/{target.prefix}: {len(result.sent)} sent, {len(result.skipped)} already there, "
            f"manifest written"
        )
        return ExitCode.OK

    _check_name("--name", args.name)
    _check_name("--revision", args.revision)
    from components.plan.run import load_settings

    _, settings = load_settings(args.project_dir, args.stack)
    if args.replicas and not settings.storage.replicas:
        raise InputError(
            Problem(path="--replicas", message=f"stack {args.stack} has no replicas (modelyard:storage.replicas)")
        )
    target = _target(args, settings, args.name, args.revision)
    how = " (content hashed)" if args.deep else " (sizes and stored sha256)"
    problems = verify(target, deep=args.deep)
    if problems:
        raise EnvironmentBlocked(
            f"s3://{target.bucket}/{target.prefix} does not match its manifest:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + "\nPush the revision again (it re-sends only what is wrong)"
        )
    print(f"s3://{target.bucket}/{target.prefix}: every object matches the manifest" + how)
    if not args.replicas:
        return ExitCode.OK
    # A replica that lists its models (storage.replicas.<region>.models) holds only those: the others are skipped.
    skipped = sorted(
        region
        for region in settings.storage.replicas
        if (names := settings.replicated_model_names(region)) is not None and args.name not in names
    )
    for region in skipped:
        print(f"{args.name} is not replicated to {region} (storage.replicas.{region}.models): not checked there")
    # A replica that is a cell's own bucket (storage.replicas.<region>.cell) is named as that cell's model bucket.
    account = target.bucket.rsplit("-", 1)[1]
    replicas = {
        region: Target(
            aws.open_clients(args.profile, region),
            model_bucket_name(settings.project, replica.cell, account)
            if replica.cell is not None
            else replica_bucket_name(target.bucket, region),
            args.name,
            args.revision,
        )
        for region, replica in settings.storage.replicas.items()
        if region not in skipped
    }
    problems = verify_replicas(target, replicas, deep=args.deep)
    if problems:
        raise EnvironmentBlocked("replicas that do not match the source:\n" + "\n".join(f"  - {p}" for p in problems))
    for region, replica in sorted(replicas.items()):
        print(f"s3://{replica.bucket}/{replica.prefix}: replica in {region} matches the manifest" + how)
    return ExitCode.OK
