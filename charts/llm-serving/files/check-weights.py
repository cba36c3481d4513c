"""Checks a model's weights against its manifest.json before vLLM starts. Runs in the vLLM image (python3; boto3
comes with the image's runai-model-streamer[s3]). `modelyard models push` hashed every byte at upload and recorded
each object's SHA-256 in its metadata, and the manifest's own SHA-256 in the manifest's metadata.

  check-weights.py local <model dir> quick|full
      the copy on the node's NVMe, or the files on the FSx for Lustre mount: every file present with its size (quick),
      or re-hashed (full); with POLL_SECONDS set, waits for manifest.json first (a shared file system)
  check-weights.py s3 <bucket> <prefix> quick|full
      the bucket's objects, for streaming: waits for manifest.json (pushed last), checks the manifest's own SHA-256,
      then every object's size and SHA-256 record with one HEAD each (quick), or reads and hashes every byte (full)

Exit 1 names every mismatch, and the pod's start fails (a copy is retried) instead of serving corrupt weights.
"""

import hashlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

SCHEMA = "modelyard.manifest/v1"
MANIFEST = "manifest.json"
CHUNK = 16 * 1024 * 1024


def _entries(manifest, where):
    if manifest.get("schema") != SCHEMA:
        raise SystemExit(f"{where}/{MANIFEST}: schema {manifest.get('schema')!r}, expected {SCHEMA!r}")
    return manifest["files"]


def _hash(chunks):
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _compare(relative, size, sha256, entry):
    if size != entry["size"]:
        return f"{relative}: {size} bytes, the manifest says {entry['size']}"
    if sha256 is not None and sha256 != entry["sha256"]:
        return f"{relative}: sha256 {sha256[:12] or '(none)'}..., the manifest says {entry['sha256'][:12]}..."
    return None


def check_local(root, full):
    root = os.path.normpath(root)
    # On a shared file system (FSx for Lustre, POLL_SECONDS set) the weights may not be pushed yet: wait for the
    # manifest, pushed last, as the bucket's check does. A copy on the node has it already.
    poll = os.environ.get("POLL_SECONDS")
    while poll and not os.path.isfile(os.path.join(root, MANIFEST)):
        print(f"waiting for {root}/{MANIFEST} (push the weights with modelyard models push)", flush=True)
        time.sleep(int(poll))
    with open(os.path.join(root, MANIFEST), encoding="utf-8") as f:
        files = _entries(json.load(f), root)

    def one(entry):
        relative = entry["path"]
        path = os.path.normpath(os.path.join(root, relative))
        if os.path.isabs(relative) or not path.startswith(root + os.sep):
            return f"{relative}: outside the model directory"
        if not os.path.isfile(path):
            return f"{relative}: missing"
        sha256 = None
        if full:
            with open(path, "rb") as f:
                sha256 = _hash(iter(lambda: f.read(CHUNK), b""))
        return _compare(relative, os.path.getsize(path), sha256, entry)

    return files, one


def check_s3(bucket, prefix, full):
    import boto3  # the vLLM image's; credentials from EKS Pod Identity (the container credentials provider)
    from botocore.exceptions import ClientError

    s3 = boto3.client("s3")
    key = f"{prefix}/{MANIFEST}"
    poll = int(os.environ.get("POLL_SECONDS", "30"))
    while True:
        try:
            answer = s3.get_object(Bucket=bucket, Key=key)
            break
        except ClientError as exc:
            print(f"waiting for s3://{bucket}/{key} (push the weights with modelyard models push): {exc}", flush=True)
            time.sleep(poll)
    body = answer["Body"].read()
    recorded = answer.get("Metadata", {}).get("sha256", "")
    if recorded and hashlib.sha256(body).hexdigest() != recorded:
        raise SystemExit(f"s3://{bucket}/{key}: its SHA-256 differs from the one recorded at push")
    if not recorded:
        print(f"s3://{bucket}/{key} carries no SHA-256 record (pushed by an older kit): its entries are checked")
    files = _entries(json.loads(body), f"s3://{bucket}/{prefix}")

    def one(entry):
        relative = entry["path"]
        if relative.startswith("/") or ".." in relative.split("/"):
            return f"{relative}: outside the model prefix"
        try:
            if full:
                obj = s3.get_object(Bucket=bucket, Key=f"{prefix}/{relative}")
                stream = obj["Body"]
                return _compare(relative, obj["ContentLength"], _hash(iter(lambda: stream.read(CHUNK), b"")), entry)
            head = s3.head_object(Bucket=bucket, Key=f"{prefix}/{relative}")
        except ClientError as exc:
            return f"{relative}: {exc}"
        return _compare(relative, head["ContentLength"], head.get("Metadata", {}).get("sha256", ""), entry)

    return files, one


def main(argv):
    if len(argv) < 4 or argv[1] not in ("local", "s3") or argv[-1] not in ("quick", "full"):
        print(__doc__, file=sys.stderr)
        return 2
    full = argv[-1] == "full"
    files, one = check_local(argv[2], full) if argv[1] == "local" else check_s3(argv[2], argv[3].rstrip("/"), full)
    # hashlib releases the GIL on large buffers, and HEADs wait on the network: threads check several files at once.
    with ThreadPoolExecutor(max_workers=min(16, len(files) or 1)) as pool:
        problems = [p for p in pool.map(one, files) if p]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} of {len(files)} files do not match the manifest", file=sys.stderr)
        return 1
    print(f"{len(files)} files, {sum(e['size'] for e in files)} bytes match the manifest ({argv[-1]} check)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
