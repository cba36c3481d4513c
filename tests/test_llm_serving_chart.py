"""charts/llm-serving with the real tools: Helm's engine (helm-python-sdk: lint, schema, render),
kubernetes-validate strict for the cluster's Kubernetes, checkov over every rendered object, and golden files.

Rendered: every model of every shipped stack (values from components.k8s.serving_values) and every values file
in charts/llm-serving/ci/. UPDATE_GOLDEN=1 rewrites tests/golden/llm-serving/.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from components.catalog import resolve_model
from components.contract import (
    POOL_LABEL,
    TENANT_LABEL,
    VLLM_REQUESTS_RUNNING,
    VLLM_REQUESTS_WAITING,
    pool_labels,
    pool_taints,
)
from components.errors import UnbuildableSetting
from components.k8s.serving import ServingArgs
from components.k8s.serving_values import (
    CHART_DIR,
    MAX_RELEASE_NAME,
    cold_start,
    release_name,
    serving_values,
)
from components.platform import serving_args
from components.settings import Settings, build_settings
from components.settings.stackfile import StackFile
from components.sizing import SizingOption, fit_on
from components.sizing.cold_start import WeightsLoad
from tests.conftest import SHIPPED_STACKS, aws_layer
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_DIR = ROOT / "tests" / "golden" / "llm-serving"
CI_DIR = CHART_DIR / "ci"
KUBERNETES_VERSION = "1.33.0"
# API groups of CRDs the chart may render, which kubernetes-validate has no schema for.
CRD_GROUPS = frozenset({"monitoring.coreos.com", "keda.sh", "leaderworkerset.x-k8s.io"})
# Contrasting releases kept as golden files: one GPU on a pilot, eight H200s on the enterprise stack, and a
# replica across two p5.48xlarge nodes (the enterprise stack's Llama 3.1 405B in bf16: MULTI_NODE).
GOLDEN = {
    "pilot-llama-8b": ("pilot", "llama-8b"),
    "core-deepseek-r1": ("core", "deepseek-r1"),
    "core-llama-405b-bf16": ("core", "llama-405b"),
}
# The enterprise preset's llama-405b served in bf16: 810 GB of weights, two p5.48xlarge nodes per replica
# (pipeline parallel 2 over EFA), one replica (a multi-node replica is not autoscaled).
MULTI_NODE = "core-llama-405b-bf16"
MULTI_NODE_MODEL = {
    "dtype": "bf16",
    "context": 16384,
    "concurrency": 32,
    "replicas": {"min": 1, "max": 1},
    # The kit's default for a multi-node replica (copy), not the preset's file system: the copy path's golden.
    "weights": {"load": None},
}
LWS_GROUP = "leaderworkerset.x-k8s.io"
ECR_ACCOUNT = "123456789012"
GPU_TAINT = {"key": "nvidia.com/gpu", "effect": "NoSchedule", "value": "true"}


# --- helpers ---------------------------------------------------------------------------------------


def stack_settings(stack: str) -> Settings:
    stack_file = StackFile.load(ROOT, stack)
    return build_settings(project=stack_file.project, stack=stack, config=stack_file.engine_config())


def args_of(settings: Settings) -> ServingArgs:
    """The Serving component's args as the platform builds them from `settings`."""
    return serving_args(settings, aws_layer())


def stack_values(settings: Settings, model: str) -> dict[str, Any]:
    registry = None
    if settings.network.nat.value == "none":
        registry = f"{ECR_ACCOUNT}.dkr.ecr.{settings.region}.amazonaws.com/docker-hub"
    return serving_values(
        args_of(settings),
        model,
        bucket=f"{settings.name}-models",
        image_registry=registry,
        prometheus_url="http://kube-prometheus-stack-prometheus.monitoring.svc:9090",
    )


def namespace_of(settings: Settings, model: str) -> str:
    tenants = sorted(name for name, t in settings.tenants.items() if model in t.models)
    return tenants[0] if tenants else "models"


def render(chart: helm.Chart, values: Mapping[str, Any], *, name: str, namespace: str) -> list[dict[str, Any]]:
    out = chart.render(values=dict(values), name=name, namespace=namespace)
    objects = [doc for path, text in sorted(out.items()) if path.endswith(".yaml") for doc in yaml.safe_load_all(text)]
    return sorted((o for o in objects if o), key=lambda o: (o["kind"], o["metadata"]["name"]))


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = of_kind(objects, "Deployment")
    return deployment["spec"]["template"]["spec"]


def pod_templates(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """role -> pod template of a release: "single" (the Deployment's), or a LeaderWorkerSet's "leader" and "worker"."""
    deployments, groups = of_kind(objects, "Deployment"), of_kind(objects, "LeaderWorkerSet")
    assert len(deployments) + len(groups) == 1
    if deployments:
        return {"single": deployments[0]["spec"]["template"]}
    template = groups[0]["spec"]["leaderWorkerTemplate"]
    return {"leader": template["leaderTemplate"], "worker": template["workerTemplate"]}


def pod_specs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {role: template["spec"] for role, template in pod_templates(objects).items()}


def as_pods(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A LeaderWorkerSet's pod templates as Pods: what kubernetes-validate and checkov can check (neither looks
    inside a custom resource); the LWS controller creates pods from exactly these templates."""
    pods = []
    for group in of_kind(objects, "LeaderWorkerSet"):
        template = group["spec"]["leaderWorkerTemplate"]
        for role in ("leader", "worker"):
            metadata = template[f"{role}Template"]["metadata"]
            pods.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {**metadata, "name": f"{group['metadata']['name']}-{role}", "namespace": "ci"},
                    "spec": template[f"{role}Template"]["spec"],
                }
            )
    return pods


def sizing_gpus(settings: Settings, model: str) -> tuple[int, int]:
    """(tensor parallel, GPUs per replica) sizing chooses: the hungriest fit over the pool's instance types."""
    m = settings.models[model]
    fits = [
        fit_on(m.model, t, dtype=m.dtype, context=m.context, concurrency=m.concurrency)
        for t in settings.pools[m.pool].instance_types
    ]
    options = [f for f in fits if isinstance(f, SizingOption)]
    best = max(options, key=lambda f: f.gpus_per_replica)
    return best.tensor_parallel, best.gpus_per_replica


def schedulable(spec: Mapping[str, Any], node_labels: Mapping[str, str], taints: list[dict[str, str]]) -> bool:
    """The scheduler's nodeSelector and taint rules (NodeAffinity and TaintToleration filters)."""
    if any(node_labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    for taint in taints:
        if taint["effect"] not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in spec.get("tolerations") or []):
            return False
    return True


def tolerates(toleration: Mapping[str, str], taint: Mapping[str, str]) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint["effect"]:
        return False
    if toleration.get("key") and toleration["key"] != taint["key"]:
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return True
    return toleration.get("value", "") == taint.get("value", "")


def disruptions_allowed(pdb: Mapping[str, Any], *, replicas: int, healthy: int) -> int:
    """The disruption controller's arithmetic (pkg/controller/disruption): currentHealthy - desiredHealthy."""
    spec = pdb["spec"]
    assert "minAvailable" not in spec
    max_unavailable = spec["maxUnavailable"]
    assert isinstance(max_unavailable, int)
    desired_healthy = max(0, replicas - max_unavailable)
    return max(0, healthy - desired_healthy)


def eviction_allowed(pdb: Mapping[str, Any], *, replicas: int, healthy: int, pod_ready: bool) -> bool:
    """Whether the eviction API lets a drain evict one pod of the release."""
    if not pod_ready and pdb["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
        return True
    return disruptions_allowed(pdb, replicas=replicas, healthy=healthy) >= 1


def all_containers(spec: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    yield from spec.get("initContainers") or []
    yield from spec["containers"]


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def settings_by_stack() -> dict[str, Settings]:
    return {stack: stack_settings(stack) for stack in SHIPPED_STACKS}


@pytest.fixture(scope="module")
def stack_cases(settings_by_stack: dict[str, Settings]) -> dict[str, tuple[Settings, str]]:
    """<stack>-<model> -> (settings, model), for every model of every shipped stack (all single-node today)."""
    cases = {}
    for stack, settings in settings_by_stack.items():
        for model in settings.models:
            cases[f"{stack}-{model}"] = (settings, model)
    return cases


def multi_node_settings() -> Settings:
    """The enterprise stack (core) with its llama-405b served in bf16: two nodes per replica."""
    from tests.conftest import config_for

    stack_file = StackFile.load(ROOT, "core")
    # Copying, the stack needs no file system.
    # The stack's own model entries (its owner of llama-8b) stay: the override adds to them.
    models = {**json.loads(stack_file.engine_config().get("modelyard:models", "{}")), "llama-405b": MULTI_NODE_MODEL}
    overrides = config_for("enterprise", models=models, storage={"fsx": None})
    config = {**stack_file.engine_config(), **overrides}
    return build_settings(project=stack_file.project, stack="core", config=config)


@pytest.fixture(scope="module")
def multi_node() -> tuple[Settings, str]:
    return multi_node_settings(), "llama-405b"


@pytest.fixture(scope="module")
def case_values(
    stack_cases: dict[str, tuple[Settings, str]], multi_node: tuple[Settings, str]
) -> dict[str, tuple[dict[str, Any], str, str]]:
    """case -> (values, release, namespace): shipped stacks' models, the multi-node model and the ci/ values files."""
    out = {}
    for case, (settings, model) in {**stack_cases, MULTI_NODE: multi_node}.items():
        out[case] = (stack_values(settings, model), model, namespace_of(settings, model))
    for path in sorted(CI_DIR.glob("*.yaml")):
        out[f"ci-{path.stem}"] = (yaml.safe_load(path.read_text()), "ci", "ci")
    return out


@pytest.fixture(scope="module")
def rendered(chart: helm.Chart, case_values) -> dict[str, list[dict[str, Any]]]:
    """Every release the tests render."""
    return {
        case: render(chart, values, name=release, namespace=namespace)
        for case, (values, release, namespace) in case_values.items()
    }


@pytest.fixture(scope="module")
def stack_rendered(rendered: dict[str, list[dict[str, Any]]], stack_cases: dict[str, Any]) -> dict[str, Any]:
    return {case: rendered[case] for case in stack_cases}


# --- the chart as a chart --------------------------------------------------------------------------


def test_every_shipped_model_is_rendered(settings_by_stack: dict[str, Settings], stack_cases) -> None:
    total = sum(len(s.models) for s in settings_by_stack.values())
    assert len(stack_cases) == total
    assert {"pilot-llama-8b", "core-deepseek-r1", "product-llama-70b"} <= set(stack_cases)


@pytest.mark.parametrize("values_file", sorted(p.name for p in CI_DIR.glob("*.yaml")))
def test_lint_strict_passes_for_ci_values(values_file: str) -> None:
    report = helm.lint(CHART_DIR, yaml.safe_load((CI_DIR / values_file).read_text()), strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


def test_lint_strict_passes_for_shipped_stacks(stack_cases: dict[str, tuple[Settings, str]]) -> None:
    for case, (settings, model) in stack_cases.items():
        report = helm.lint(
            CHART_DIR, stack_values(settings, model), strict=True, namespace=namespace_of(settings, model)
        )
        assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == [], (case, report)


def test_templates_use_neither_capabilities_nor_lookup(chart: helm.Chart) -> None:
    for template in chart.templates:
        code = re.sub(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}", "", template["data"], flags=re.DOTALL)
        assert ".Capabilities" not in code, template["name"]
        assert not re.search(r"\blookup\b", code), template["name"]


def test_helpers_are_namespaced(chart: helm.Chart) -> None:
    defined = [name for t in chart.templates for name in re.findall(r'define "([^"]+)"', t["data"])]
    assert defined and all(name.startswith("llm-serving.") for name in defined)


def test_every_value_has_a_comment_above_it() -> None:
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    missing = []
    for i, line in enumerate(lines):
        if re.match(r"^\s*[\w./-]+:", line) and not lines[i - 1].lstrip().startswith("#"):
            missing.append(f"{i + 1}: {line.strip()}")
    assert missing == []


def test_schema_covers_every_value_and_refuses_unknown_keys(chart: helm.Chart) -> None:
    schema = chart.schema
    assert schema is not None

    def walk(values: Any, node: Mapping[str, Any], path: str) -> Iterator[str]:
        if not isinstance(values, dict) or "properties" not in node:
            return
        if node.get("additionalProperties") is not False:
            yield f"{path or '<root>'} admits unknown keys"
        for key, value in values.items():
            if key not in node["properties"]:
                yield f"{path}.{key} is not in the schema"
            else:
                yield from walk(value, node["properties"][key], f"{path}.{key}")

    assert list(walk(chart.values, schema, "")) == []
    with pytest.raises(helm.HelmValuesError, match="replicas"):
        chart.validate_schema({**base_values(), "replicas": 2})


def base_values() -> dict[str, Any]:
    return yaml.safe_load((CI_DIR / "minimal-values.yaml").read_text())


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ({"vllm": {"pipelineParallel": 5, "nodesPerReplica": 5}}, "/vllm/nodesPerReplica"),
        ({"vllm": {"tensorParallel": 8, "pipelineParallel": 1, "nodesPerReplica": 2}}, "/vllm/pipelineParallel"),
        ({"multiNode": {"efaDevices": -1}}, "/multiNode/efaDevices"),
        ({"vllm": {"tensorParallel": 3}}, "/vllm/tensorParallel"),
        ({"image": {"tag": "latest"}}, "/image/tag"),
        ({"image": {"digest": "sha256:abc"}}, "/image/digest"),
        ({"podDisruptionBudget": {"maxUnavailable": 0}}, "/podDisruptionBudget/maxUnavailable"),
        ({"rollingUpdate": {"maxUnavailable": 0}}, "/rollingUpdate/maxUnavailable"),
        ({"securityContext": {"runAsUser": 0}}, "/securityContext/runAsUser"),
        ({"vllm": {"extraArgs": ["--enable-log-requests"]}}, "/vllm/extraArgs/0"),
        ({"vllm": {"gpuMemoryUtilization": 1.5}}, "/vllm/gpuMemoryUtilization"),
        ({"weights": {"bucket": ""}}, "/weights/bucket"),
    ],
)
def test_schema_refuses(chart: helm.Chart, override: dict[str, Any], where: str) -> None:
    values = base_values()
    for key, value in override.items():
        values[key] = {**values.get(key, {}), **value}
    with pytest.raises(helm.HelmValuesError) as caught:
        chart.validate_schema(values)
    assert where in str(caught.value)
    with pytest.raises(helm.HelmValuesError):  # the engine enforces it while rendering too
        chart.render(values=values, name="refused", namespace="ci")


def test_schema_refuses_the_defaults_alone(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        chart.render(values={}, name="x", namespace="ci")
    for path in ("/weights/bucket", "/pool/name", "/model/servedName"):
        assert path in str(caught.value)


def test_images_are_pinned_by_tag_and_digest(chart: helm.Chart) -> None:
    for image in (chart.values["image"], chart.values["loader"]["image"]):
        assert image["tag"] and image["tag"] != "latest"
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", image["digest"])
    assert chart.metadata["appVersion"] == chart.values["image"]["tag"]
    docs = (ROOT / "docs" / "serving.md").read_text()
    for image in (chart.values["image"], chart.values["loader"]["image"]):
        assert f"{image['repository']}:{image['tag']}" in docs and image["digest"] in docs
    # Tag-only pins are accepted (an image with no known digest), and so is a pull-through registry.
    values = base_values() | {"image": {"digest": "", "registry": f"{ECR_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/x"}}
    containers = pod_spec(render(chart, values, name="t", namespace="ci"))["containers"]
    assert containers[0]["image"] == f"{ECR_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/x/vllm/vllm-openai:v0.17.1"


def test_release_names_fit_helm(stack_cases: dict[str, tuple[Settings, str]]) -> None:
    for _, model in stack_cases.values():
        helm.validate_release_name(model)
        assert len(model) <= MAX_RELEASE_NAME


# --- Kubernetes validity and security ----------------------------------------------------------------


def test_every_object_is_valid_for_the_cluster_kubernetes(rendered: dict[str, list[dict[str, Any]]]) -> None:
    seen_crds = set()
    for case, objects in rendered.items():
        for obj in [*objects, *as_pods(objects)]:
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                group = obj["apiVersion"].split("/")[0]
                assert group in CRD_GROUPS, f"{case}: no schema for {obj['apiVersion']} {obj['kind']}"
                seen_crds.add(group)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{case}: {obj['kind']} {obj['metadata']['name']}: {exc.message}")
    assert seen_crds == CRD_GROUPS


def test_checkov_finds_nothing_outside_the_skip_list(rendered: dict[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    checkov = require_tool("checkov")
    skips = yaml.safe_load((CHART_DIR / "checkov-skips.yaml").read_text())["skips"]
    assert all(s["id"].startswith("CKV") and len(s["reason"]) > 40 for s in skips)
    for case, objects in rendered.items():
        (tmp_path / f"{case}.yaml").write_text(yaml.safe_dump_all([*objects, *as_pods(objects)], sort_keys=False))
    result = subprocess.run(
        [
            checkov,
            *("--framework", "kubernetes", "--skip-download", "--quiet", "--compact", "-o", "json"),
            *("--skip-check", ",".join(s["id"] for s in skips)),
            *("-d", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{f['check_id']} {f['resource']} ({f['file_path']})" for r in reports for f in r["results"]["failed_checks"]
    ]
    assert failed == []
    summary = reports[0]["summary"]
    assert summary["parsing_errors"] == 0 and summary["passed"] > 100 and summary["resource_count"] >= len(rendered)


def test_every_container_is_locked_down(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for case, objects in rendered.items():
        for role, spec in pod_specs(objects).items():
            pod = spec["securityContext"]
            assert pod["runAsNonRoot"] is True and pod["runAsUser"] >= 10000, (case, role)
            assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, (case, role)
            assert spec["automountServiceAccountToken"] is False, (case, role)
            assert not any("hostPath" in v for v in spec["volumes"]), (case, role)
            assert not spec.get("hostNetwork") and not spec.get("hostIPC"), (case, role)
            for container in all_containers(spec):
                sc = container["securityContext"]
                assert sc["runAsNonRoot"] is True and sc["runAsUser"] >= 10000, (case, container["name"])
                assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False, case
                assert sc["readOnlyRootFilesystem"] is True, case
                assert sc["capabilities"] == {"drop": ["ALL"]}, case
                assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, case
                assert "@sha256:" in container["image"], (case, container["image"])


def test_writable_paths_are_volumes_and_shm_is_memory(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for case, objects in rendered.items():
        for role, spec in pod_specs(objects).items():
            volumes = {v["name"]: v for v in spec["volumes"]}
            assert volumes["shm"]["emptyDir"]["medium"] == "Memory" and volumes["shm"]["emptyDir"]["sizeLimit"], case
            # Every volume is a bounded emptyDir, but the FSx file system's claim, mounted read-only (weights.load fsx).
            assert all(v["emptyDir"].get("sizeLimit") for v in volumes.values() if "emptyDir" in v), case
            claims = [v for v in volumes.values() if "emptyDir" not in v]
            assert all(v["persistentVolumeClaim"]["readOnly"] is True for v in claims), case
            for c in all_containers(spec):
                assert all(m.get("readOnly") for m in c["volumeMounts"] if m["name"] in {v["name"] for v in claims})
            (vllm,) = spec["containers"]
            mounts = {m["mountPath"]: m for m in vllm["volumeMounts"]}
            assert {"/dev/shm", "/tmp", "/scratch"} <= set(mounts), (case, role)
            env = {e["name"]: e.get("value") for e in vllm["env"]}
            for key in ("HOME", "XDG_CACHE_HOME", "VLLM_CACHE_ROOT", "TRITON_CACHE_DIR", "HF_HOME", "TMPDIR"):
                assert env[key].startswith(("/scratch", "/tmp")), (case, role, key)


def test_vllm_runs_offline_with_request_logging_off(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for case, objects in rendered.items():
        for role, spec in pod_specs(objects).items():
            (vllm,) = spec["containers"]
            env = {e["name"]: e.get("value") for e in vllm["env"]}
            assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_NO_USAGE_STATS"] == "1" and env["DO_NOT_TRACK"] == "1"
            if role == "worker":  # a Ray worker: vLLM's arguments are the leader's
                assert "args" not in vllm and env["RAY_USAGE_STATS_ENABLED"] == "0", case
                continue
            assert "--no-enable-log-requests" in vllm["args"], case
            assert not any(a.startswith(("--enable-log-requests", "--disable-log-requests")) for a in vllm["args"])


# --- what the kit promises ----------------------------------------------------------------------------


def test_arguments_come_from_the_settings_and_the_sizing(stack_cases, stack_rendered) -> None:
    for case, (settings, model) in stack_cases.items():
        m = settings.models[model]
        tp, gpus = sizing_gpus(settings, model)
        args = pod_spec(stack_rendered[case])["containers"][0]["args"]
        if m.weights.load is WeightsLoad.FSX:
            continue  # the enterprise preset's llama-405b reads the FSx file system (test_fsx_models_read_the_mount)
        # Every other shipped model is one node per replica, so it streams its weights from the bucket (load null).
        assert m.weights.load is None and args[0].startswith("s3://")
        assert args[0].endswith(f"/models/{resolve_model(m.model).name}/{m.revision}")
        assert "--load-format=runai_streamer" in args
        (extra,) = [a.split("=", 1)[1] for a in args if a.startswith("--model-loader-extra-config=")]
        loader = json.loads(extra)
        assert loader["concurrency"] == 32 and loader["memory_limit"] >= 2**30
        # The node's tensor-parallel ranks split the reads instead of each reading the whole checkpoint.
        assert loader.get("distributed", False) is (tp > 1), case
        assert f"--served-model-name={model}" in args
        assert f"--tensor-parallel-size={tp}" in args
        assert f"--pipeline-parallel-size={gpus // tp}" in args
        assert f"--max-model-len={m.context}" in args
        # Batching comes from the throughput model, never below the sizing concurrency (tests/test_throughput.py).
        seqs = int(next(a for a in args if a.startswith("--max-num-seqs=")).split("=")[1])
        tokens = int(next(a for a in args if a.startswith("--max-num-batched-tokens=")).split("=")[1])
        assert m.concurrency <= seqs <= 1024
        assert tokens >= seqs
        assert "--gpu-memory-utilization=0.9" in args
        assert "--enable-prefix-caching" in args


def test_gpu_limits_equal_the_parallel_size_sizing_chose(stack_cases, stack_rendered) -> None:
    seen = set()
    for case, (settings, model) in stack_cases.items():
        tp, gpus = sizing_gpus(settings, model)
        resources = pod_spec(stack_rendered[case])["containers"][0]["resources"]
        assert resources["limits"]["nvidia.com/gpu"] == str(gpus) == str(tp), case
        assert resources["requests"]["nvidia.com/gpu"] == str(gpus), case
        seen.add(gpus)
    assert seen == {1, 4, 8}  # one GPU (pilot), tensor parallel 4 (product 70B) and 8 (core DeepSeek-R1)


def test_pod_lands_only_on_gpu_nodes_of_its_pool(stack_cases, stack_rendered) -> None:
    for case, (settings, model) in stack_cases.items():
        spec = pod_spec(stack_rendered[case])
        pool = settings.models[model].pool
        dedicated_to = [n for n, t in settings.tenants.items() if t.dedicated_pool == pool]
        own_taints = [GPU_TAINT] + [{"key": TENANT_LABEL, "value": t, "effect": "NoSchedule"} for t in dedicated_to]
        gpu_node = {POOL_LABEL: pool, "nvidia.com/gpu.present": "true"}
        assert schedulable(spec, gpu_node, own_taints), case
        for other in settings.pools:
            if other != pool:
                assert not schedulable(spec, {**gpu_node, POOL_LABEL: other}, [GPU_TAINT]), (case, other)
        assert not schedulable(spec, {POOL_LABEL: pool}, []), f"{case}: a node without GPUs"
        assert not schedulable(spec, {"kubernetes.io/os": "linux"}, []), f"{case}: a system node"
        assert not schedulable(
            spec, gpu_node, [*own_taints, {"key": TENANT_LABEL, "value": "x", "effect": "NoSchedule"}]
        )


def test_only_the_dedicated_tenants_models_tolerate_its_pool(stack_cases, stack_rendered) -> None:
    analytics = pod_spec(stack_rendered["core-analytics-8b"])["tolerations"]
    assert {"key": TENANT_LABEL, "operator": "Equal", "value": "analytics", "effect": "NoSchedule"} in analytics
    for case in stack_cases:
        if case != "core-analytics-8b":
            assert all(t["key"] != TENANT_LABEL for t in pod_spec(stack_rendered[case])["tolerations"]), case


def test_pdb_never_blocks_a_drain_of_a_single_replica(chart: helm.Chart, rendered) -> None:
    single = render(chart, base_values(), name="one", namespace="ci")
    assert of_kind(single, "Deployment")[0]["spec"]["replicas"] == 1
    (pdb,) = of_kind(single, "PodDisruptionBudget")
    assert eviction_allowed(pdb, replicas=1, healthy=1, pod_ready=True)  # serving
    assert eviction_allowed(pdb, replicas=1, healthy=0, pod_ready=False)  # waiting for weights, or loading
    for case, objects in rendered.items():
        for pdb in of_kind(objects, "PodDisruptionBudget"):
            # Autoscaled Deployments leave replicas to KEDA: check the smallest count it may choose. A
            # LeaderWorkerSet's pods are its groups times the group size.
            scaled = of_kind(objects, "ScaledObject")
            groups = of_kind(objects, "LeaderWorkerSet")
            if groups:
                replicas = groups[0]["spec"]["replicas"] * groups[0]["spec"]["leaderWorkerTemplate"]["size"]
            else:
                deployment_spec = of_kind(objects, "Deployment")[0]["spec"]
                replicas = scaled[0]["spec"]["minReplicaCount"] if scaled else deployment_spec["replicas"]
            assert eviction_allowed(pdb, replicas=replicas, healthy=replicas, pod_ready=True), case
            for template in pod_templates(objects).values():
                assert pdb["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items(), case


def pod_labels(objects: list[dict[str, Any]]) -> dict[str, str]:
    return of_kind(objects, "Deployment")[0]["spec"]["template"]["metadata"]["labels"]


def test_rollout_needs_no_spare_gpus_and_spreads_zones_only_with_replicas(rendered, case_values) -> None:
    spread_cases: dict[str, str] = {}
    for case, objects in rendered.items():
        values = case_values[case][0]
        most = max(values.get("replicaCount", 1), values.get("maxReplicas", 1))
        groups = of_kind(objects, "LeaderWorkerSet")
        if groups:  # one group at a time, no spare group; a group stays in its pool's one zone
            rollout = groups[0]["spec"]["rolloutStrategy"]
            assert rollout["rollingUpdateConfiguration"] == {"maxSurge": 0, "maxUnavailable": 1}, case
            assert all("topologySpreadConstraints" not in spec for spec in pod_specs(objects).values()), case
            continue
        (deployment,) = of_kind(objects, "Deployment")
        strategy = deployment["spec"]["strategy"]
        assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}, case
        spread = deployment["spec"]["template"]["spec"].get("topologySpreadConstraints")
        if most > 1:
            spread_cases[case] = spread[0]["whenUnsatisfiable"]
            assert spread[0]["topologyKey"] == "topology.kubernetes.io/zone", case
        else:
            assert spread is None, case
    # A requirement where the pool spans zones and two replicas always run (the HA preset's models, the core's
    # DeepSeek-R1 and 8B); best effort for one replica at the minimum (the pilot), a one-zone EFA pool (the core's
    # 405B) and the chart's default.
    assert spread_cases["product-llama-8b"] == spread_cases["product-llama-70b"] == "DoNotSchedule"
    assert spread_cases["core-deepseek-r1"] == spread_cases["core-llama-8b"] == "DoNotSchedule"
    assert spread_cases["pilot-llama-8b"] == spread_cases["core-llama-405b"] == "ScheduleAnyway"
    assert spread_cases["ci-multi-gpu-values"] == "ScheduleAnyway"
    assert "ci-minimal-values" not in spread_cases


def test_zone_spread_is_a_requirement_only_across_zones_with_two_replicas(make_settings) -> None:
    for zones, replicas, expected in (
        ((), {"min": 2, "max": 3}, "DoNotSchedule"),  # the network's zones
        (("use1-az1",), {"min": 2, "max": 3}, "ScheduleAnyway"),  # a pool pinned to one zone
        ((), {"min": 1, "max": 3}, "ScheduleAnyway"),  # one replica at the minimum: nothing to spread when quiet
    ):
        settings = make_settings(
            "moderate", pools={"l40s": {"zone_ids": list(zones)}}, models={"llama-8b": {"replicas": replicas}}
        )
        values = stack_values(settings, "llama-8b")
        assert values["topologySpread"] == {"whenUnsatisfiable": expected}, (zones, replicas)


def test_startup_probe_covers_the_model_load(stack_cases, stack_rendered) -> None:
    minutes = {}
    for case in stack_cases:
        (vllm,) = pod_spec(stack_rendered[case])["containers"]
        startup = vllm["startupProbe"]
        minutes[case] = startup["periodSeconds"] * startup["failureThreshold"] / 60
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert vllm[probe]["httpGet"] == {"path": "/health", "port": "http"}, case
    assert minutes["pilot-llama-8b"] >= 10
    assert minutes["core-deepseek-r1"] > minutes["product-llama-70b"] > minutes["pilot-llama-8b"]


def test_weights_wait_for_the_manifest_and_stream_without_a_copy(stack_cases, stack_rendered) -> None:
    for case, (settings, model) in stack_cases.items():
        if settings.models[model].weights.load is WeightsLoad.FSX:
            continue  # test_fsx_models_read_the_mount
        spec = pod_spec(stack_rendered[case])
        (checker,) = spec["initContainers"]  # no copy: one check of the bucket's objects, then vLLM streams them
        assert checker["name"] == "check-weights" and checker["image"] == spec["containers"][0]["image"], case
        # Where the push tool puts the weights: by catalog name (several stack entries may share them).
        catalog_name = resolve_model(settings.models[model].model).name
        prefix = f"models/{catalog_name}/{settings.models[model].revision}"
        assert checker["command"][:3] == ["python3", "-c", CHECK_SCRIPT.read_text()]
        assert checker["command"][3:] == ["s3", f"{settings.name}-models", prefix, "quick"], case
        assert spec["containers"][0]["args"][0] == f"s3://{settings.name}-models/{prefix}", case
        assert "weights" not in {v["name"] for v in spec["volumes"]}, case
        assert all(m["name"] != "weights" for c in all_containers(spec) for m in c["volumeMounts"]), case
        env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
        assert env["AWS_REGION"] == settings.region, case  # the streamer's S3 client


def test_a_copied_model_waits_for_its_manifest_and_fits_the_cache(
    chart: helm.Chart, multi_node: tuple[Settings, str]
) -> None:
    settings, model = multi_node  # two nodes a replica: streaming is refused, so the default is copy
    registry = f"{ECR_ACCOUNT}.dkr.ecr.{settings.region}.amazonaws.com/docker-hub"
    values = serving_values(args_of(settings), model, bucket=f"{settings.name}-models", image_registry=registry)
    assert values["weights"]["load"] == "copy"
    assert values["volumes"]["weightsSizeGi"] == 832  # 812 GB of bf16 weights and 10%, in GiB
    objects = render(chart, values, name=model, namespace="ci")
    for spec in pod_specs(objects).values():
        loader = spec["initContainers"][0]
        env = {e["name"]: e["value"] for e in loader["env"]}
        assert env["BUCKET"] == f"{settings.name}-models"
        script = loader["command"][-1]
        assert 'until err=$(aws s3api head-object --bucket "$BUCKET" --key "$PREFIX/manifest.json"' in script
        assert "aws s3 sync" in script
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["weights"]["emptyDir"]["sizeLimit"] == "832Gi"


def test_no_nat_stacks_pull_through_the_ecr_cache(settings_by_stack, stack_rendered) -> None:
    for case, objects in stack_rendered.items():
        settings = settings_by_stack[case.split("-", 1)[0]]
        for container in all_containers(pod_spec(objects)):
            through_ecr = container["image"].startswith(f"{ECR_ACCOUNT}.dkr.ecr.")
            assert through_ecr == (settings.network.nat.value == "none"), (case, container["image"])
    with pytest.raises(UnbuildableSetting, match=r"network\.nat"):
        serving_values(args_of(settings_by_stack["core"]), "llama-8b", bucket="core-models")


def test_a_multi_node_model_is_a_leader_worker_set(multi_node: tuple[Settings, str], rendered) -> None:
    """Two p5.48xlarge per replica: one LeaderWorkerSet group of two pods, eight GPUs and all 32 EFA interfaces
    each, the leader running the Ray head then vLLM with pipeline parallel 2 over Ray, the worker joining it."""
    settings, model = multi_node
    option = max(
        (
            fit_on(
                model_settings.model,
                t,
                dtype=model_settings.dtype,
                context=model_settings.context,
                concurrency=model_settings.concurrency,
            )
            for model_settings in [settings.models[model]]
            for t in settings.pools[settings.models[model].pool].instance_types
        ),
        key=lambda f: f.gpus_per_replica if isinstance(f, SizingOption) else 0,
    )
    assert isinstance(option, SizingOption) and option.nodes_per_replica == 2 and option.tensor_parallel == 8
    objects = rendered[MULTI_NODE]
    assert not of_kind(objects, "Deployment") and not of_kind(objects, "ScaledObject")
    (group,) = of_kind(objects, "LeaderWorkerSet")
    assert group["apiVersion"] == f"{LWS_GROUP}/v1"
    spec = group["spec"]
    assert spec["replicas"] == settings.models[model].replicas.min == 1
    assert spec["leaderWorkerTemplate"]["size"] == option.nodes_per_replica
    assert spec["leaderWorkerTemplate"]["restartPolicy"] == "RecreateGroupOnPodRestart"
    assert spec["rolloutStrategy"]["rollingUpdateConfiguration"] == {"maxUnavailable": 1, "maxSurge": 0}
    assert int(group["metadata"]["annotations"]["pulumi.com/timeoutSeconds"]) > 60 * 60
    specs = pod_specs(objects)
    assert set(specs) == {"leader", "worker"}
    for role, pod in specs.items():
        (vllm,) = pod["containers"]
        resources = vllm["resources"]
        for kind in ("requests", "limits"):
            assert resources[kind]["nvidia.com/gpu"] == "8", role  # one pipeline stage: a whole node
            assert resources[kind]["vpc.amazonaws.com/efa"] == "32", role  # every EFA interface of a p5.48xlarge
        env = {e["name"]: e for e in vllm["env"]}
        assert env["FI_PROVIDER"]["value"] == "efa" and env["FI_EFA_USE_DEVICE_RDMA"]["value"] == "1"
        assert env["NCCL_SOCKET_IFNAME"]["value"] == "eth0"
        assert env["VLLM_HOST_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
        assert "topologySpreadConstraints" not in pod, role  # the pool is one zone; a group never spreads
        # Each pod holds the whole checkpoint: vLLM reads its stage's layers from local files.
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["weights"]["emptyDir"]["sizeLimit"] == "832Gi"  # 810 GB of bf16 weights and 10%, in GiB
        gpu_node = {POOL_LABEL: "h100-efa", "nvidia.com/gpu.present": "true"}
        assert schedulable(pod, gpu_node, [GPU_TAINT]) and not schedulable(pod, {**gpu_node, POOL_LABEL: "h200"}, [])
    leader, worker = specs["leader"]["containers"][0], specs["worker"]["containers"][0]
    script = leader["command"][2]
    assert leader["command"][:2] == ["/bin/sh", "-c"] and 'ray start --head --port="$RAY_PORT"' in script
    assert "$LWS_GROUP_SIZE" in script and script.rstrip().endswith('exec vllm serve "$@"')
    args = leader["args"]
    assert args[0] == f"/models/{model}" and "--tensor-parallel-size=8" in args and "--pipeline-parallel-size=2" in args
    assert "--distributed-executor-backend=ray" in args and "--no-enable-log-requests" in args
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert leader[probe]["httpGet"] == {"path": "/health", "port": "http"}
        assert worker[probe]["tcpSocket"] == {"port": "ray"}
    assert (
        'ray start --address="$LWS_LEADER_ADDRESS:$RAY_PORT"' in worker["command"][2]
        and "--block" in worker["command"][2]
    )
    assert [p["name"] for p in worker["ports"]] == ["ray"]
    # The Service and the ServiceMonitor reach the leader alone; the workers answer no HTTP.
    (service,) = of_kind(objects, "Service")
    selector = service["spec"]["selector"]
    templates = pod_templates(objects)
    assert selector.items() <= templates["leader"]["metadata"]["labels"].items()
    assert not selector.items() <= templates["worker"]["metadata"]["labels"].items()
    # The release's pods reach each other on every port (Ray, NCCL's bootstrap); callers only the server port.
    (policy,) = of_kind(objects, "NetworkPolicy")
    (peers,) = [rule for rule in policy["spec"]["ingress"] if "ports" not in rule]
    assert peers["from"] == [
        {
            "podSelector": {
                "matchLabels": {
                    k: service["spec"]["selector"][k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")
                }
            }
        }
    ]


def test_the_tenant_namespace_admits_the_traffic_of_a_group() -> None:
    """Isolation's default-deny namespaces already allow pod to pod inside the namespace on every port and
    protocol: Ray's ports are partly random, NCCL bootstraps over TCP on ports of its choosing."""
    from components.k8s.isolation import network_policies
    from components.settings.types import TenantEgress

    policy = network_policies("tenant-core", egress=TenantEgress.NONE, s3_cidrs=())["allow-same-namespace"]
    assert policy["ingress"] == [{"from": [{"podSelector": {}}]}]
    assert policy["egress"] == [{"to": [{"podSelector": {}}]}]


def test_multi_node_values_refuse_what_cannot_run(multi_node: tuple[Settings, str]) -> None:
    # Settings validation refuses these first; the values function keeps the guard for any other caller.
    import dataclasses
    from types import MappingProxyType

    from components.settings.types import Interconnect, ReplicaSettings

    settings, model = multi_node
    values = stack_values(settings, model)
    assert values["vllm"]["nodesPerReplica"] == values["vllm"]["pipelineParallel"] == 2
    assert values["multiNode"] == {"efaDevices": 32} and values["autoscaling"]["enabled"] is False
    assert values["resources"]["requests"] == {"cpu": "144", "memory": "1536Gi"}  # one node's share, per pod
    pool = dataclasses.replace(settings.pools["h100-efa"], interconnect=Interconnect.STANDARD)
    no_efa = dataclasses.replace(settings, pools=MappingProxyType({**settings.pools, "h100-efa": pool}))
    with pytest.raises(UnbuildableSetting, match=r"models\.llama-405b\.pool: .*2 p5\.48xlarge nodes per replica"):
        stack_values(no_efa, model)
    scaled = dataclasses.replace(settings.models[model], replicas=ReplicaSettings(min=1, max=2))
    autoscaled = dataclasses.replace(settings, models=MappingProxyType({**settings.models, model: scaled}))
    with pytest.raises(UnbuildableSetting, match=r"models\.llama-405b\.replicas\.max: .*not autoscaled"):
        stack_values(autoscaled, model)


def test_keda_scales_between_min_and_max_on_per_replica_load(stack_cases, stack_rendered) -> None:
    """The dynamics are tests/test_autoscaling.py's; here: bounds, signal and who owns `replicas`."""
    for case, (settings, model) in stack_cases.items():
        replicas = settings.models[model].replicas
        objects = stack_rendered[case]
        scaled = of_kind(objects, "ScaledObject")
        (deployment,) = of_kind(objects, "Deployment")
        if replicas.max > replicas.min and scaled:
            (scaled_object,) = scaled
            spec = scaled_object["spec"]
            assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (replicas.min, replicas.max)
            assert spec["minReplicaCount"] >= 1, "never to zero: no load to read while no pod runs"
            (trigger,) = spec["triggers"]
            query = trigger["metadata"]["query"]
            assert VLLM_REQUESTS_RUNNING in query and VLLM_REQUESTS_WAITING in query, "never the queue alone"
            assert trigger["metricType"] == "AverageValue"
            assert "replicas" not in deployment["spec"], "the autoscaler owns replicas"
        else:
            assert not scaled
            assert deployment["spec"]["replicas"] == replicas.min


def test_autoscaling_needs_the_metric_names(chart: helm.Chart) -> None:
    values = {**base_values(), "replicaCount": 1, "maxReplicas": 2}
    values["autoscaling"] = {"enabled": True, "prometheusUrl": "http://prometheus:9090"}
    with pytest.raises(Exception, match=r"autoscaling\.runningMetric is required"):
        chart.render(values=values, name="m", namespace="ns")


def test_service_monitor_network_policy_and_service_account(stack_cases, stack_rendered) -> None:
    for case, (_, model) in stack_cases.items():
        objects = stack_rendered[case]
        (monitor,) = of_kind(objects, "ServiceMonitor")
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
        (service,) = of_kind(objects, "Service")
        assert service["spec"]["type"] == "ClusterIP"
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        (policy,) = of_kind(objects, "NetworkPolicy")
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        sources = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
        namespaces = [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in sources]
        assert namespaces == ["gateway", "monitoring"] and all("podSelector" in p for p in sources), case
        (account,) = of_kind(objects, "ServiceAccount")
        assert account["metadata"]["name"] == f"{model}-serving" == pod_spec(objects)["serviceAccountName"]
        labels = pod_labels(objects)
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version"):
            assert key in labels and all(key in o["metadata"]["labels"] for o in objects), case


# --- golden files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_golden(case: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    text = yaml.safe_dump_all(rendered[case], sort_keys=True, width=120)
    path = GOLDEN_DIR / f"{case}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"{path} is missing: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == path.read_text(), f"{case} changed: review the diff, bump the chart version, UPDATE_GOLDEN=1"


# --- the values function on its own ----------------------------------------------------------------------


def test_fp8_from_a_bf16_checkpoint_is_quantized_at_load(stack_cases, stack_rendered) -> None:
    args = pod_spec(stack_rendered["product-llama-70b"])["containers"][0]["args"]
    assert "--quantization=fp8" in args  # no fp8 checkpoint in the catalog: the bf16 one is pushed
    settings, _ = stack_cases["product-llama-70b"]
    m = settings.models["llama-70b"]
    assert cold_start("llama-70b", m, settings.pools[m.pool]).checkpoint_gb > 140  # the bf16 one, not the fp8 size
    for case in ("pilot-llama-8b", "core-deepseek-r1"):  # served in their native precision
        assert not any(a.startswith("--quantization") for a in pod_spec(stack_rendered[case])["containers"][0]["args"])


def test_requests_fit_the_smallest_node_of_the_pool(settings_by_stack: dict[str, Settings]) -> None:
    # product's l40s pool holds g6e.xlarge (4 vCPU, 32 GiB) and g6e.2xlarge: the request fits the smaller.
    values = stack_values(settings_by_stack["product"], "llama-8b")
    assert values["resources"]["requests"] == {"cpu": "3", "memory": "24Gi"}
    values = stack_values(settings_by_stack["core"], "deepseek-r1")  # all of a p5en.48xlarge's 8 GPUs
    assert values["resources"]["requests"] == {"cpu": "144", "memory": "1536Gi"}
    assert values["volumes"]["shmSizeGi"] == 32


def test_values_function_refuses_what_the_chart_cannot_serve(make_settings) -> None:
    settings = make_settings("minimal")
    with pytest.raises(UnbuildableSetting, match=r"models\.nope: no such model"):
        serving_values(args_of(settings), "nope", bucket="b-models")
    # Settings keep model names to 30 characters; the release name check is the last line of defence.
    with pytest.raises(UnbuildableSetting, match="53"):
        release_name("m" * (MAX_RELEASE_NAME + 1))
    assert release_name("deepseek-r1") == "deepseek-r1"


def test_serving_lands_on_the_nodes_the_gpu_pools_make(stack_cases, stack_rendered) -> None:
    # The labels and taints every GPU node gets (components.contract builds them for Karpenter's NodePools and
    # the static node groups alike): a model's pods schedule on its own pool's nodes and on no other pool's.
    for case, (settings, model) in stack_cases.items():
        spec = pod_spec(stack_rendered[case])
        pool = settings.models[model].pool
        tenant = next((n for n, t in settings.tenants.items() if t.dedicated_pool == pool), None)
        assert schedulable(spec, pool_labels(pool, gpu_model="any", tenant=tenant), pool_taints(tenant)), case
        for other in set(settings.pools) - {pool}:
            other_tenant = next((n for n, t in settings.tenants.items() if t.dedicated_pool == other), None)
            labels = pool_labels(other, gpu_model="any", tenant=other_tenant)
            assert not schedulable(spec, labels, pool_taints(other_tenant)), (case, other)


def chart_fingerprint() -> str:
    """sha256 over what the packaged chart holds (templates, values, schema, Chart.yaml but its version)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in CHART_DIR.rglob("*") if p.is_file()):
        relative = path.relative_to(CHART_DIR).as_posix()
        if relative.startswith("ci/") or relative == "checkov-skips.yaml":
            continue
        text = path.read_text()
        if relative == "Chart.yaml":
            text = re.sub(r"(?m)^version:.*$", "", text)
        digest.update(f"{relative}\0{text}\0".encode())
    return digest.hexdigest()


def test_chart_version_is_bumped_with_every_change(chart: helm.Chart) -> None:
    path = GOLDEN_DIR / "chart.json"
    current = {"version": chart.version, "sha256": chart_fingerprint()}
    recorded = json.loads(path.read_text()) if path.is_file() else {}
    changed_unbumped = current["sha256"] != recorded.get("sha256") and current["version"] == recorded.get("version")
    assert not changed_unbumped, f"the chart changed: bump version in {CHART_DIR / 'Chart.yaml'}, then UPDATE_GOLDEN=1"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(current, indent=2) + "\n")
    assert current == json.loads(path.read_text()), "run UPDATE_GOLDEN=1 after bumping the chart version"


# --- the weights check (charts/llm-serving/files/check-weights.py) ----------------------------------------

CHECK_SCRIPT = CHART_DIR / "files" / "check-weights.py"


def pushed_revision(root: Path, files: Mapping[str, bytes]) -> Path:
    """A model directory as the loader leaves it: the files and the manifest `modelyard models push` writes."""
    from components.tools.models import MANIFEST_SCHEMA

    model_dir = root / "llama-8b"
    entries = []
    for name, data in sorted(files.items()):
        (model_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (model_dir / name).write_bytes(data)
        entries.append({"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    manifest = {"schema": MANIFEST_SCHEMA, "name": "llama-8b", "revision": "main", "files": entries}
    (model_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return model_dir


def check(*argv: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run(
        [sys.executable, "-c", CHECK_SCRIPT.read_text(), *argv], capture_output=True, text=True, timeout=120, env=env
    )


def test_check_weights_accepts_a_complete_copy(tmp_path: Path) -> None:
    files = {"config.json": b"{}", "model-00001-of-00002.safetensors": b"a" * 70_000, "sub/tokenizer.json": b"t"}
    model_dir = pushed_revision(tmp_path, files)
    for mode in ("quick", "full"):
        result = check("local", str(model_dir), mode)
        assert result.returncode == 0, result.stderr
        assert "3 files, 70003 bytes match" in result.stdout


def test_check_weights_names_every_mismatch(tmp_path: Path) -> None:
    model_dir = pushed_revision(tmp_path, {"a.safetensors": b"aaaa", "b.safetensors": b"bbbb", "c.json": b"{}"})
    (model_dir / "a.safetensors").write_bytes(b"aaab")  # same size, other content: only the full check sees it
    (model_dir / "b.safetensors").write_bytes(b"bb")
    (model_dir / "c.json").unlink()
    full = check("local", str(model_dir), "full")
    assert full.returncode == 1
    assert "a.safetensors: sha256" in full.stderr and "b.safetensors: 2 bytes, the manifest says 4" in full.stderr
    assert "c.json: missing" in full.stderr and "3 of 3 files do not match" in full.stderr
    quick = check("local", str(model_dir), "quick")
    assert quick.returncode == 1 and "a.safetensors" not in quick.stderr and "2 of 3 files" in quick.stderr


def test_check_weights_refuses_paths_outside_the_model_and_foreign_manifests(tmp_path: Path) -> None:
    model_dir = pushed_revision(tmp_path, {"a.json": b"{}"})
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["files"].append({"path": "../escape", "size": 1, "sha256": "0" * 64})
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    result = check("local", str(model_dir), "quick")
    assert result.returncode == 1 and "../escape: outside the model directory" in result.stderr
    (model_dir / "manifest.json").write_text(json.dumps({**manifest, "schema": "other/v9"}))
    assert check("local", str(model_dir), "quick").returncode == 1
    assert check("local", str(model_dir), "sometimes").returncode == 2


def test_check_weights_of_a_bucket_reads_only_records_unless_asked(tmp_path: Path) -> None:
    """The stream path's check against a real S3 API (moto): what `models push` wrote passes the quick check with
    one HEAD per object; an object altered behind the push tool's back passes it (same size, same record) but not
    the full one, which reads every byte; a tampered manifest fails on its own SHA-256."""
    import boto3
    from moto.server import ThreadedMotoServer

    from components.tools.models import MANIFEST_SCHEMA

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POLL_SECONDS": "5",
        }
        s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        s3.create_bucket(Bucket="b-models")
        prefix = "models/llama-3.1-8b/main"
        files = {"config.json": b"{}", "model.safetensors": b"w" * 4096}
        entries = []
        for name, data in files.items():
            digest = hashlib.sha256(data).hexdigest()
            s3.put_object(Bucket="b-models", Key=f"{prefix}/{name}", Body=data, Metadata={"sha256": digest})
            entries.append({"path": name, "size": len(data), "sha256": digest})
        body = json.dumps({"schema": MANIFEST_SCHEMA, "files": entries}).encode()
        own = hashlib.sha256(body).hexdigest()
        s3.put_object(Bucket="b-models", Key=f"{prefix}/manifest.json", Body=body, Metadata={"sha256": own})
        for mode in ("quick", "full"):
            result = check("s3", "b-models", prefix, mode, env=env)
            assert result.returncode == 0, result.stderr
            assert f"2 files, 4098 bytes match the manifest ({mode} check)" in result.stdout
        altered = hashlib.sha256(b"w" * 4096).hexdigest()
        s3.put_object(Bucket="b-models", Key=f"{prefix}/model.safetensors", Body=b"x" * 4096,
                      Metadata={"sha256": altered})  # fmt: skip
        assert check("s3", "b-models", prefix, "quick", env=env).returncode == 0
        full = check("s3", "b-models", prefix, "full", env=env)
        assert full.returncode == 1 and "model.safetensors: sha256" in full.stderr
        s3.put_object(Bucket="b-models", Key=f"{prefix}/manifest.json", Body=body.replace(b"4096", b"4097"),
                      Metadata={"sha256": own})  # fmt: skip
        tampered = check("s3", "b-models", prefix, "quick", env=env)
        assert tampered.returncode == 1 and "differs from the one recorded at push" in tampered.stderr
    finally:
        server.stop()


def test_every_pod_checks_its_weights_in_the_vllm_image(rendered) -> None:
    for case, objects in rendered.items():
        for spec in pod_specs(objects).values():  # every pod of a multi-node group copies and checks its own
            names = [c["name"] for c in spec["initContainers"]]
            checker = spec["initContainers"][-1]
            assert checker["name"] == "check-weights", case
            assert checker["image"] == spec["containers"][0]["image"], case  # no extra image to pull
            assert checker["command"][:3] == ["python3", "-c", CHECK_SCRIPT.read_text()], case
            if names == ["fetch-weights", "check-weights"]:
                assert checker["command"][3] == "local", case
                assert all(m.get("readOnly") for m in checker["volumeMounts"] if m["name"] == "weights"), case
            elif any(m["name"] == "model-files" for m in checker["volumeMounts"]):
                # The FSx mount: the files there, read-only, after waiting for the manifest (POLL_SECONDS).
                assert names == ["check-weights"] and checker["command"][3] == "local", case
                assert checker["command"][4].startswith("/fsx/models/"), case
                assert {e["name"] for e in checker["env"]} >= {"POLL_SECONDS"}, case
            else:
                assert names == ["check-weights"] and checker["command"][3] == "s3", case


def test_large_numbers_render_as_integers(chart: helm.Chart) -> None:
    # Values reach Helm as JSON, where every number is a float64; Go prints 1048576.0 as 1.048576e+06.
    values = base_values() | {
        "vllm": {"maxModelLen": 1_048_576, "maxNumSeqs": 1024},
        "securityContext": {"runAsUser": 2_000_000_000, "runAsGroup": 2_000_000_000, "fsGroup": 2_000_000_000},
        "terminationGracePeriodSeconds": 3600,
    }
    spec = pod_spec(render(chart, values, name="big", namespace="ci"))
    assert "--max-model-len=1048576" in spec["containers"][0]["args"]
    assert (
        spec["securityContext"]["runAsUser"] == 2_000_000_000 == spec["containers"][0]["securityContext"]["runAsUser"]
    )
    assert spec["securityContext"]["fsGroup"] == 2_000_000_000


def test_pulumi_waits_for_the_rollout_deadline_or_not_at_all(settings_by_stack: dict[str, Settings]) -> None:
    values = stack_values(settings_by_stack["core"], "deepseek-r1")
    deadline = values["progressDeadlineMinutes"] * 60
    assert values["deploymentAnnotations"] == {"pulumi.com/timeoutSeconds": str(deadline)}
    assert deadline > 60 * values["probes"]["startup"]["minutes"] > 0
    early = serving_values(args_of(settings_by_stack["pilot"]), "llama-8b", bucket="pilot-models", await_rollout=False)
    assert early["deploymentAnnotations"] == {"pulumi.com/skipAwait": "true"}


def test_the_contracts_serving_names_are_the_charts(stack_cases, stack_rendered) -> None:
    # The gateway routes to serving_fullname(<model>) and the settings refuse two models with one such name: both
    # rely on it being the name the chart gives every object of a release.
    from components.contract import SERVING_CHART, serving_fullname

    assert yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["name"] == SERVING_CHART
    for case, (_, model) in stack_cases.items():
        services = [o for o in stack_rendered[case] if o["kind"] == "Service"]
        assert {s["metadata"]["name"] for s in services} == {serving_fullname(model)}, case


def test_a_stopping_server_finishes_what_it_holds(stack_cases, stack_rendered) -> None:
    # Rollouts, drains and scale-down must not cut a generation short: a preStop pause while the Service and the
    # gateway stop sending, then the longest generation the gateway allows.
    from components.contract import GENERATION_TIMEOUT_SECONDS, SERVER_PRE_STOP_SECONDS

    for case in stack_cases:
        for name, pod in pod_specs(stack_rendered[case]).items():
            vllm = next(c for c in pod["containers"] if c["name"] == "vllm")
            assert vllm["lifecycle"]["preStop"] == {"sleep": {"seconds": SERVER_PRE_STOP_SECONDS}}, (case, name)
            assert pod["terminationGracePeriodSeconds"] >= SERVER_PRE_STOP_SECONDS + GENERATION_TIMEOUT_SECONDS


def test_only_a_model_that_may_run_one_replica_is_kept_from_voluntary_disruption(
    stack_cases, stack_rendered, make_settings, chart
):
    for case, (settings, model) in stack_cases.items():
        single = settings.models[model].replicas.min == 1
        for template in pod_templates(stack_rendered[case]).values():
            annotations = template["metadata"].get("annotations") or {}
            assert (annotations.get("karpenter.sh/do-not-disrupt") == "true") is single, case
    # The pilot's 8B capped at one replica is kept as well.
    single = make_settings("minimal", models={"llama-8b": {"replicas": {"min": 1, "max": 1}}})
    values = serving_values(args_of(single), "llama-8b", bucket="pilot-models")
    rendered = render(chart, values, name="llama-8b", namespace="tenant-internal")
    (template,) = pod_templates(rendered).values()
    assert template["metadata"]["annotations"] == {"karpenter.sh/do-not-disrupt": "true"}


def test_streaming_is_refused_across_nodes_and_named(multi_node: tuple[Settings, str]) -> None:
    import dataclasses

    from components.settings.types import ModelWeightsSettings
    from components.sizing.cold_start import WeightsLoad

    settings, model = multi_node
    m = settings.models[model]
    streaming = dataclasses.replace(m, weights=ModelWeightsSettings(load=WeightsLoad.STREAM))
    args = dataclasses.replace(args_of(settings), models={**settings.models, model: streaming})
    with pytest.raises(UnbuildableSetting, match=rf"models\.{model}\.weights\.load: stream is for a replica on one"):
        serving_values(args, model, bucket="b-models", image_registry="r.example/docker-hub")


def test_fsx_models_read_the_mount(chart: helm.Chart, stack_cases, stack_rendered) -> None:
    """weights.load fsx (the enterprise preset's llama-405b): the namespace's claim mounted read-only at /fsx, vLLM
    reading /fsx/models/<catalog>/<revision> (the data repository association's /models), no copy, no streamer; and a
    two-node replica reads the same mount from both nodes instead of copying 812 GB to each."""
    fsx_cases = [c for c, (st, m) in stack_cases.items() if st.models[m].weights.load is WeightsLoad.FSX]
    assert fsx_cases == ["core-llama-405b"]
    settings, model = stack_cases["core-llama-405b"]
    prefix = f"models/{resolve_model(settings.models[model].model).name}/{settings.models[model].revision}"
    spec = pod_spec(stack_rendered["core-llama-405b"])
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["model-files"]["persistentVolumeClaim"] == {"claimName": "model-files", "readOnly": True}
    assert "weights" not in volumes
    (vllm,) = spec["containers"]
    assert vllm["args"][0] == f"/fsx/{prefix}"
    assert not any(a.startswith("--load-format") for a in vllm["args"])
    assert {"name": "model-files", "mountPath": "/fsx", "readOnly": True} in vllm["volumeMounts"]
    (checker,) = spec["initContainers"]
    assert checker["command"][3:] == ["local", f"/fsx/{prefix}", "quick"]
    # The same model on two nodes a replica: each pod of the group mounts the claim; nothing is copied.
    config = {"dtype": "bf16", "context": 16384, "concurrency": 32, "replicas": {"min": 1, "max": 1}}
    from tests.conftest import config_for

    stack_file = StackFile.load(ROOT, "core")
    two_nodes = build_settings(
        project=stack_file.project,
        stack="core",
        config={
            **stack_file.engine_config(),
            **config_for(
                "enterprise",
                models={**json.loads(stack_file.engine_config().get("modelyard:models", "{}")), "llama-405b": config},
            ),
        },
    )
    values = stack_values(two_nodes, model)
    assert values["weights"]["load"] == "fsx" and values["vllm"]["nodesPerReplica"] == 2
    objects = render(chart, values, name=model, namespace="tenant-core")
    for role, pod in pod_specs(objects).items():
        assert [c["name"] for c in pod["initContainers"]] == ["check-weights"], role
        assert "weights" not in {v["name"] for v in pod["volumes"]}, role
    # Without the file system the setting is refused, naming the key.
    with pytest.raises(UnbuildableSetting) as refused:
        serving_values(
            dataclasses.replace(args_of(settings), fsx=None), model, bucket="core-models", image_registry="r/docker-hub"
        )
    assert refused.value.path == "models.llama-405b.weights.load"
