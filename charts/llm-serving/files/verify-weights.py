"""Checks the weights copied into the pod against the model's manifest.json: every file present, with the
size and SHA-256 `modelyard models push` recorded. Runs in the vLLM image (python3, standard library only)
as the init container after the copy; exit 1 names every mismatch, and the pod retries the copy.

Usage: python3 verify-weights.py <model dir>
"""

import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

SCHEMA = "modelyard.manifest/v1"
CHUNK = 16 * 1024 * 1024


def check(root, entry):
    relative = entry["path"]
    path = os.path.normpath(os.path.join(root, relative))
    if os.path.isabs(relative) or not path.startswith(root + os.sep):
        return f"{relative}: outside the model directory"
    if not os.path.isfile(path):
        return f"{relative}: missing"
    size = os.path.getsize(path)
    if size != entry["size"]:
        return f"{relative}: {size} bytes, the manifest says {entry['size']}"
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    if digest.hexdigest() != entry["sha256"]:
        return f"{relative}: sha256 {digest.hexdigest()[:12]}..., the manifest says {entry['sha256'][:12]}..."
    return None


def main(argv):
    root = os.path.normpath(argv[1])
    with open(os.path.join(root, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    if manifest.get("schema") != SCHEMA:
        print(f"{root}/manifest.json: schema {manifest.get('schema')!r}, expected {SCHEMA!r}", file=sys.stderr)
        return 1
    files = manifest["files"]
    # hashlib releases the GIL on large buffers: threads hash several files at once.
    with ThreadPoolExecutor(max_workers=min(16, len(files) or 1)) as pool:
        problems = [p for p in pool.map(lambda e: check(root, e), files) if p]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} of {len(files)} files do not match the manifest", file=sys.stderr)
        return 1
    print(f"{len(files)} files, {sum(e['size'] for e in files)} bytes match the manifest of {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
