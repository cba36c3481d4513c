"""Cold start of one model replica: how long from "a replica is wanted" to "it serves", part by part.

Pure arithmetic over the checkpoint's size and the way its weights reach the GPUs (`WeightsLoad`):

  node launch    Karpenter asks EC2 for a GPU node; it boots, joins and its device plugin registers the GPUs
  image pull     the ~10 GB vLLM image onto the new node (through the pull-through cache without NAT)
  weights        copy: `aws s3 sync` to the node's NVMe, then the check against manifest.json;
                 stream: the quick check of the bucket's objects (the Run:ai streamer reads them during load);
                 fsx: the quick check of the files on the mount (sizes against manifest.json)
  engine load    copy: the weights from local NVMe into GPU memory; stream: straight from S3 into GPU memory;
                 fsx: from the Lustre mount at the file system's throughput (capacity x MB/s per TiB, shared by
                 every replica reading at once); then CUDA graph capture and torch.compile (ENGINE_START_SECONDS)

Every figure is a budget (the slow end), since the same numbers size the startup probe and the rollout deadline
(`components.k8s.serving_values`): a probe that gives up early kills a healthy start. Each constant names its
source or says it is an assumption; `assumptions_markdown()` is the table docs/serving.md holds (a test keeps the
two equal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from components.catalog import InstanceType, Model, WeightDtype


class WeightsLoad(StrEnum):
    """How a replica's weights reach its GPUs."""

    COPY = "copy"  # an init container copies the checkpoint to the node's NVMe; vLLM reads the local files
    STREAM = "stream"  # vLLM streams the safetensors from S3 into GPU memory (--load-format runai_streamer)
    FSX = "fsx"  # vLLM reads the files from the stack's FSx for Lustre file system, mounted read-only


class WeightsCheck(StrEnum):
    """What is checked against manifest.json before vLLM starts (`models push` hashed every byte at upload)."""

    QUICK = "quick"  # every file present with its size and SHA-256 record; the manifest's own SHA-256 (no re-hash)
    FULL = "full"  # every byte re-hashed: the copy on the node, or a full read of the bucket's objects


# EC2 launch, boot of the EKS GPU AMI, kubelet joining and the NVIDIA device plugin advertising the GPUs: per
# instance family in the catalog (instances.yaml node_launch, source NODE-LAUNCH-GPU), replaced by a pool's
# `node_launch_seconds` where a team measured its own. This is the budget where no family is known.
NODE_LAUNCH_SECONDS = 300
# A first pull of the ~10 GB vLLM image (ECR pull-through cache where there is no NAT). Assumption: 10 minutes
# (about 17 MB/s, the slow end of a first pull that also fills the cache); a later pull on a warm cache is faster.
IMAGE_PULL_SECONDS = 600
# `aws s3 sync` with 64 parallel requests to NVMe: about 1 GB/s on a 25-100 Gbit/s node. Assumption: half of it.
COPY_GB_PER_SECOND = 0.5
# The full check hashes with up to 16 threads; SHA-256 runs near 1 GB/s a core. Assumption: 1 GB/s in all.
FULL_CHECK_GB_PER_SECOND = 1.0
# The quick check: one GET of manifest.json and one HEAD per file (a few hundred at most). Assumption.
QUICK_CHECK_SECONDS = 30
# vLLM reading local safetensors into GPU memory. Assumption: 0.5 GB/s, the slow end (single-volume instance
# stores, several tensor-parallel ranks reading at once).
LOCAL_LOAD_GB_PER_SECOND = 0.5
# The Run:ai streamer read Llama 3 8B (15 GB) from S3 in the same region in 4.88 s at concurrency 32 on a
# g5.12xlarge: 3.07 GB/s [RUNAI-STREAMER-BENCH]. Budgeted at half (TLS, larger models, the node's other traffic).
STREAM_GB_PER_SECOND = 1.5
# The streamer's measured concurrency optimum on S3 [RUNAI-STREAMER-BENCH]: the S3 clients the replica opens.
STREAM_CONCURRENCY = 32
# The share of the FSx file system's baseline throughput one replica's start is budgeted at. Assumption: half (two
# replicas starting at once, the first read after a push, which FSx fills from S3 through the data repository
# association, and the other servers' reads); a lone start on a warm file system reads at the whole baseline.
FSX_READ_SHARE = 0.5
# CUDA graph capture and torch.compile after the weights are in (its cache lives on an emptyDir: every new pod
# compiles again); a few minutes on large models. Assumption: 10 minutes.
ENGINE_START_SECONDS = 600


@dataclass(frozen=True)
class ColdStart:
    """Seconds from "a replica is wanted" (no free node) to "it serves", by part."""

    load: WeightsLoad
    check: WeightsCheck
    checkpoint_gb: float
    node_launch_seconds: int
    image_pull_seconds: int
    weights_seconds: int
    """Before vLLM starts: copy plus check (copy), or the quick or full check of the bucket (stream)."""
    engine_seconds: int
    """vLLM's own start: the weights into GPU memory (from NVMe or streamed from S3), then graph capture."""

    @property
    def total_seconds(self) -> int:
        return self.node_launch_seconds + self.image_pull_seconds + self.weights_seconds + self.engine_seconds

    @property
    def on_a_running_node_seconds(self) -> int:
        """A replica on a node that has the image already (a restart, a second replica on a big node)."""
        return self.weights_seconds + self.engine_seconds

    def to_json(self) -> dict[str, object]:
        return {
            "weights_load": self.load.value,
            "weights_check": self.check.value,
            "checkpoint_gb": round(self.checkpoint_gb, 1),
            "node_launch_seconds": self.node_launch_seconds,
            "image_pull_seconds": self.image_pull_seconds,
            "weights_seconds": self.weights_seconds,
            "engine_seconds": self.engine_seconds,
            "total_seconds": self.total_seconds,
        }

    def summary(self) -> str:
        """One line: `~NN min (node N + image N + weights N + engine N), stream`."""
        parts = (self.node_launch_seconds, self.image_pull_seconds, self.weights_seconds, self.engine_seconds)
        node, image, weights, engine = (_minutes(p) for p in parts)
        return (
            f"{_minutes(self.total_seconds)} min (node {node} + image {image} + weights {weights} + engine {engine}), "
            f"weights {self.load.value}"
        )


def _minutes(seconds: int) -> int:
    return math.ceil(seconds / 60)


def fsx_read_gb_per_second(throughput_mb_per_second: float) -> float:
    """What one replica reads from the FSx file system, GB/s: its baseline throughput (the per-TiB figure times the
    capacity in TiB: "throughput ... is proportional to its storage capacity", FSx for Lustre User Guide,
    "Performance characteristics of SSD and HDD storage classes" [AWS-FSX-PERF]), budgeted at FSX_READ_SHARE."""
    return throughput_mb_per_second / 1000 * FSX_READ_SHARE


def estimate(
    checkpoint_gb: float,
    load: WeightsLoad,
    check: WeightsCheck = WeightsCheck.QUICK,
    *,
    fsx_throughput_mb_per_second: float | None = None,
    node_launch_seconds: int = NODE_LAUNCH_SECONDS,
) -> ColdStart:
    """The cold start of a replica whose pushed checkpoint holds `checkpoint_gb` GB (10^9 bytes); fsx needs the file
    system's baseline throughput (`FsxSettings.throughput_mb_per_second`); node_launch_seconds: the pool's (its
    setting, else its instance family's catalog figure)."""
    if not checkpoint_gb > 0:
        raise ValueError(f"checkpoint_gb must be positive, got {checkpoint_gb}")
    if load is WeightsLoad.FSX:
        if not fsx_throughput_mb_per_second or fsx_throughput_mb_per_second <= 0:
            raise ValueError("weights load fsx needs the file system's throughput (MB/s)")
        rate = fsx_read_gb_per_second(fsx_throughput_mb_per_second)
        # The full check reads every file once more through the mount before vLLM reads it again.
        weights = (
            checkpoint_gb / min(rate, FULL_CHECK_GB_PER_SECOND) if check is WeightsCheck.FULL else QUICK_CHECK_SECONDS
        )
        into_gpu = checkpoint_gb / rate
    elif load is WeightsLoad.COPY:
        copy = checkpoint_gb / COPY_GB_PER_SECOND
        checked = checkpoint_gb / FULL_CHECK_GB_PER_SECOND if check is WeightsCheck.FULL else QUICK_CHECK_SECONDS
        weights = copy + checked
        into_gpu = checkpoint_gb / LOCAL_LOAD_GB_PER_SECOND
    else:
        # The full check reads every object from S3 once more before the streamer reads it again.
        weights = checkpoint_gb / FULL_CHECK_GB_PER_SECOND if check is WeightsCheck.FULL else QUICK_CHECK_SECONDS
        into_gpu = checkpoint_gb / STREAM_GB_PER_SECOND
    return ColdStart(
        load=load,
        check=check,
        checkpoint_gb=checkpoint_gb,
        node_launch_seconds=node_launch_seconds,
        image_pull_seconds=IMAGE_PULL_SECONDS,
        weights_seconds=math.ceil(weights),
        engine_seconds=math.ceil(into_gpu) + ENGINE_START_SECONDS,
    )


def pushed_checkpoint_gb(model: Model, served: WeightDtype) -> float:
    """GB of the checkpoint `models push` puts in the bucket to serve `served`: its own checkpoint where the catalog
    has one, else the native one (vLLM quantizes it to fp8 while loading)."""
    from components.sizing.core import weights_gb

    return weights_gb(model, pushed_dtype(model, served))[0]


def pushed_dtype(model: Model, served: WeightDtype) -> WeightDtype:
    """The checkpoint `models push` stores to serve `served`: its own where the catalog has one, else the native."""
    return served if served is model.native_dtype or served in model.checkpoints else model.native_dtype


def for_layout(model: Model, served: WeightDtype, nodes_per_replica: int, instance: InstanceType) -> ColdStart:
    """The cold start of a layout with the kit's default weight path: stream on one node, copy across nodes."""
    load = WeightsLoad.STREAM if nodes_per_replica == 1 else WeightsLoad.COPY
    return estimate(pushed_checkpoint_gb(model, served), load, node_launch_seconds=node_launch(instance))


def node_launch(instance: InstanceType) -> int:
    """Seconds until a new node of this type serves GPUs: its family's catalog figure (NODE_LAUNCH_SECONDS for a
    type without one)."""
    return instance.node_launch_seconds or NODE_LAUNCH_SECONDS


def assumptions_markdown() -> str:
    """The cold-start constants as a markdown table, for docs/serving.md (a test keeps the two equal)."""
    rows = [
        (
            "node launch",
            f"{NODE_LAUNCH_SECONDS} s",
            "per instance family in the catalog (all 300 s: assumption, no public GPU figure found), or the pool's "
            "`node_launch_seconds`",
        ),
        ("image pull", f"{IMAGE_PULL_SECONDS} s", "assumption: first pull of the ~10 GB vLLM image"),
        ("copy S3 to NVMe", f"{COPY_GB_PER_SECOND:g} GB/s", "assumption: half of ~1 GB/s with 64 requests"),
        ("full check (SHA-256)", f"{FULL_CHECK_GB_PER_SECOND:g} GB/s", "assumption: up to 16 hashing threads"),
        ("quick check", f"{QUICK_CHECK_SECONDS} s", "assumption: one GET and one HEAD per file"),
        ("NVMe to GPU", f"{LOCAL_LOAD_GB_PER_SECOND:g} GB/s", "assumption: slow end of a local load"),
        (
            "S3 to GPU (stream)",
            f"{STREAM_GB_PER_SECOND:g} GB/s",
            "half of 3.07 GB/s measured (15 GB in 4.88 s) [RUNAI-STREAMER-BENCH]",
        ),
        ("stream concurrency", str(STREAM_CONCURRENCY), "the measured optimum on S3 [RUNAI-STREAMER-BENCH]"),
        (
            "FSx to GPU (fsx)",
            f"{FSX_READ_SHARE:g} x capacity TiB x MB/s per TiB",
            "baseline throughput is proportional to capacity [AWS-FSX-PERF]; assumption: half of it per start",
        ),
        ("engine start", f"{ENGINE_START_SECONDS} s", "assumption: CUDA graphs and torch.compile, large models"),
    ]
    lines = ["| part | value | why |", "|---|---|---|"]
    lines.extend(f"| {name} | {value} | {why} |" for name, value, why in rows)
    return "\n".join(lines) + "\n"
