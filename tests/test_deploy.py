"""Layers and the deploy runner (docs/deploy.md): what a split deployment builds, where, and what it refuses."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.aws.deploy_runner import buildspec
from components.errors import InputError
from components.k8s.charts import BUNDLE_DIR, UPSTREAM_CHARTS, ChartSource, UpstreamChart
from components.plan.run import plan_stack
from tests.conftest import ROOT, by_type, plan_with

KUBERNETES_PREFIXES = ("kubernetes:", "pulumi:providers:kubernetes")
RELEASE = "kubernetes:helm.sh/v3:Release"
DOCKERFILE = ROOT / "deploy" / "runner.Dockerfile"
# Where each shipped deployment's Kubernetes layer takes the upstream charts from (a new stack must say).
CHARTS_BY_STACK = {
    "pilot": ChartSource.UPSTREAM,
    "product": ChartSource.UPSTREAM,
    "core": ChartSource.BUNDLED,
    "core-eu": ChartSource.BUNDLED,
}


def _layer(resource: dict[str, Any]) -> str:
    if resource["type"].startswith(KUBERNETES_PREFIXES) or resource["type"].startswith("modelyard:k8s:"):
        return "kubernetes"
    if resource["type"] == "pulumi:pulumi:StackReference" and resource["name"] in ("aws-layer", "global-stack"):
        # The Kubernetes layer's references: its AWS layer, and the global stack (the metrics workspace's URLs).
        # core's other reference, to its eu-west-1 cell's bucket, belongs to the AWS layer.
        return "join"
    return "aws"


def test_the_enterprise_stack_is_planned_as_two_stacks_joined_by_a_reference(plans: dict[str, Any]) -> None:
    plan = plans["core"]
    assert plan["stacks"] == ["core", "core-k8s"]
    # The other reference is core's replication into its eu-west-1 cell's bucket (docs/regions.md).
    (reference,) = [r for r in by_type(plan, "pulumi:pulumi:StackReference") if r["name"] == "aws-layer"]
    assert reference["stack"] == "core-k8s"
    assert reference["inputs"] == {"name": "organization/modelyard/core"}
    for resource in plan["resources"]:
        expected = {"aws": "core", "kubernetes": "core-k8s", "join": "core-k8s"}[_layer(resource)]
        assert resource["stack"] == expected, resource["key"]


def test_the_kubernetes_layer_creates_no_aws_resource(plans: dict[str, Any]) -> None:
    """The runner's role has no AWS write right: the layer it applies must need none."""
    k8s_stack = [r for r in plans["core"]["resources"] if r["stack"] == "core-k8s"]
    assert k8s_stack
    assert not [r["key"] for r in k8s_stack if r["type"].startswith(("aws:", "pulumi:providers:aws"))]


def test_the_kubernetes_layer_uses_what_the_aws_layer_exported(plans: dict[str, Any]) -> None:
    plan = plans["core"]
    (provider,) = by_type(plan, "pulumi:providers:kubernetes")
    kubeconfig = json.loads(provider["inputs"]["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == plan["outputs"]["cluster_endpoint"]
    (karpenter,) = [r for r in by_type(plan, "kubernetes:helm.sh/v3:Release") if r["name"] == "cluster-karpenter"]
    assert karpenter["inputs"]["values"]["settings"]["interruptionQueue"] == plan["outputs"]["karpenter_queue_name"]
    classes = [r for r in plan["resources"] if r["type"] == "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"]
    groups = plan["outputs"]["gpu_security_groups"]
    for node_class in classes:
        pool = node_class["inputs"]["metadata"]["name"].removeprefix("gpu-")
        assert [t["id"] for t in node_class["inputs"]["spec"]["securityGroupSelectorTerms"]] == groups[pool]


def test_splitting_changes_no_kubernetes_object(tmp_path: Path) -> None:
    """The same settings in one stack and in two: the Kubernetes layer is the same, object for object."""
    split = plan_stack(
        _project(
            tmp_path / "split",
            {"core": {"modelyard:preset": "enterprise"}, "core-k8s": {"modelyard:layer_of": "core"}},
        ),
        "core",
    )
    one = plan_with(
        tmp_path,
        "enterprise",
        {
            # One stack has no runner: the charts come from their repositories (through the VPN's way out).
            "deploy": {"layers": "one-stack", "state_bucket": None, "secrets_key_arn": None, "charts": None},
            "cluster": {"private_access_cidrs": ["10.200.0.0/16"]},
        },
        stack="core",
    )

    def kubernetes(plan: dict[str, Any]) -> dict[str, Any]:
        """The layer's resources; a Release's chart by its table entry (the runner's copy or the repository's)."""
        resources = {}
        for r in plan["resources"]:
            if _layer(r) != "kubernetes":
                continue
            # Its dependencies differ by design: an AWS-layer resource in one stack, the stack reference in two.
            skip = ("stack", "depends_on", "property_dependencies", "urn", "alias_urns")
            resource = {k: v for k, v in r.items() if k not in skip}
            # The same URNs but for their stack (pulumi state move carries them to <stack>-k8s).
            at = f"urn:pulumi:{r['stack']}::"
            resource["urns"] = [u.replace(at, "urn:pulumi:<stack>::", 1) for u in [r["urn"], *r.get("alias_urns", [])]]
            if r["type"] == RELEASE:
                inputs = {k: v for k, v in r["inputs"].items() if k != "repositoryOpts"}
                resource["inputs"] = {**inputs, "chart": _table_chart(r["inputs"]).name}
            resources[r["key"]] = resource
        return resources

    assert kubernetes(split) == kubernetes(one)
    assert split["manifests"] == one["manifests"]
    aws_only_in_split = {r["key"] for r in split["resources"]} - {r["key"] for r in one["resources"]}
    assert all("deploy-runner" in key or "StackReference" in key for key in aws_only_in_split), aws_only_in_split


def test_the_runner_reaches_the_private_api_and_nothing_else_reaches_it(plans: dict[str, Any]) -> None:
    plan = plans["core"]
    (cluster,) = by_type(plan, "aws:eks/cluster:Cluster")
    assert cluster["inputs"]["vpcConfig"]["endpointPublicAccess"] is False
    ingress = [
        r
        for r in by_type(plan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r["inputs"].get("fromPort") == 443 and "api" in r["name"]
    ]
    (rule,) = ingress
    assert rule["name"] == "deploy-runner-api"
    (runner_sg,) = [r for r in by_type(plan, "aws:ec2/securityGroup:SecurityGroup") if r["name"] == "deploy-runner-sg"]
    assert rule["inputs"]["referencedSecurityGroupId"].startswith("sg-")
    assert "cidrIpv4" not in rule["inputs"]
    (project,) = by_type(plan, "aws:codebuild/project:Project")
    assert project["inputs"]["vpcConfig"]["securityGroupIds"] == [rule["inputs"]["referencedSecurityGroupId"]]
    assert runner_sg["stack"] == "core"


def test_the_runner_role_has_only_what_one_run_needs(plans: dict[str, Any]) -> None:
    plan = plans["core"]
    (policy,) = [r for r in by_type(plan, "aws:iam/rolePolicy:RolePolicy") if r["name"] == "deploy-runner-role"]
    statements = {s["Sid"]: s for s in json.loads(policy["inputs"]["policy"])["Statement"]}
    actions = {a for s in statements.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    writes = {
        a
        for a in actions
        if not re.match(
            r"(s3:Get|s3:List|ecr:(BatchGet|GetDownload|BatchCheck|GetAuth)|ec2:Describe|eks:Describe|logs:)", a
        )
    }
    # The only writes: state objects, the secrets key, and CodeBuild's own network interfaces.
    assert writes == {
        "s3:PutObject",
        "s3:DeleteObject",
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:CreateNetworkInterfacePermission",
    }
    assert statements["StateReadWrite"]["Resource"] == "arn:aws:s3:::amzn-s3-demo-bucket/.pulumi/*"
    assert statements["StackSecrets"]["Resource"].startswith("arn:aws:kms:us-east-1:111122223333:key/")
    assert statements["VpcInterfaces"]["Condition"]["ArnEquals"]["ec2:Subnet"] == sorted(
        f"arn:aws:ec2:us-east-1:123456789012:subnet/{s}" for s in plan["outputs"]["private_subnet_ids"]
    )
    (association,) = [
        r
        for r in by_type(plan, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
        if r["name"] == "deploy-runner-access"
    ]
    assert association["inputs"]["policyArn"].endswith("AmazonEKSClusterAdminPolicy")


@pytest.mark.parametrize(("command", "code"), [("preview", 0), ("up", 0), ("destroy", 2), ("", 2), ("up; rm -rf /", 2)])
def test_the_runner_runs_only_preview_or_up(command: str, code: int) -> None:
    """The buildspec's guard, run by bash exactly as CodeBuild would run that line."""
    spec = yaml.safe_load(buildspec(kubernetes_stack="core-k8s"))
    guard = spec["phases"]["build"]["commands"][0]
    bash = shutil.which("bash")
    assert bash
    result = subprocess.run(
        [bash, "-c", f'{guard}\necho "$ARGS"'],
        env={"PULUMI_COMMAND": command, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == code, result.stderr
    if code == 0:
        assert result.stdout.split()[0] == command
    assert spec["env"]["variables"]["PULUMI_COMMAND"] == "preview"
    assert spec["env"]["variables"]["UV_OFFLINE"] == "1"


def test_the_runner_image_carries_the_locked_versions() -> None:
    """deploy/runner.Dockerfile bakes the CLI and plugins: they must be the versions uv.lock installs."""
    dockerfile = (ROOT / "deploy" / "runner.Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, flags=re.M))
    lock = (ROOT / "uv.lock").read_text()

    def locked(package: str) -> str:
        match = re.search(rf'\[\[package\]\]\nname = "{package}"\nversion = "([^"]+)"', lock)
        assert match, package
        return match.group(1)

    assert args["PULUMI_VERSION"] == locked("pulumi")
    assert args["PULUMI_AWS_VERSION"] == locked("pulumi-aws")
    assert args["PULUMI_KUBERNETES_VERSION"] == locked("pulumi-kubernetes")
    readme = (ROOT / "README.md").read_text()
    assert f"uv=={args['UV_VERSION']}" in readme


def _project(tmp_path: Path, stacks: dict[str, dict[str, Any]]) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks" / "presets", tmp_path / "stacks" / "presets")
    (tmp_path / "charts").symlink_to(ROOT / "charts")
    for name, config in stacks.items():
        (tmp_path / "stacks" / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}))
    return tmp_path


def _problems(tmp_path: Path, stacks: dict[str, dict[str, Any]], stack: str) -> str:
    with pytest.raises(InputError) as caught:
        plan_stack(_project(tmp_path, stacks), stack)
    return caught.value.render()


def test_a_private_cluster_without_a_path_to_its_api_is_refused(tmp_path: Path) -> None:
    message = _problems(
        tmp_path,
        {
            "x": {
                "modelyard:preset": "enterprise",
                "modelyard:deploy": {"layers": "one-stack", "state_bucket": None, "secrets_key_arn": None},
            }
        },
        "x",
    )
    assert "modelyard:deploy.layers" in message
    assert "private_access_cidrs" in message


def test_a_split_deployment_needs_its_backend_and_key(tmp_path: Path) -> None:
    message = _problems(
        tmp_path,
        {"x": {"modelyard:preset": "enterprise", "modelyard:deploy": {"state_bucket": None, "secrets_key_arn": None}}},
        "x",
    )
    assert "modelyard:deploy.state_bucket" in message
    assert "modelyard:deploy.secrets_key_arn" in message


def test_a_split_deployment_needs_its_kubernetes_stack_file(tmp_path: Path) -> None:
    message = _problems(tmp_path, {"x": {"modelyard:preset": "enterprise"}}, "x")
    assert "Pulumi.x-k8s.yaml does not exist" in message


def test_the_kubernetes_layer_stack_holds_only_the_join_and_secrets(tmp_path: Path) -> None:
    stacks = {
        "x": {"modelyard:preset": "enterprise"},
        "x-k8s": {"modelyard:layer_of": "x", "modelyard:region": "eu-west-1"},
    }
    message = _problems(tmp_path, stacks, "x-k8s")
    assert "modelyard:region" in message
    assert "Pulumi.x.yaml" in message


@pytest.mark.parametrize(
    ("layer_of", "expected"),
    [("nope", "no stack 'nope'"), ("x-k8s", "names this stack itself")],
)
def test_a_kubernetes_layer_must_name_a_real_aws_layer(tmp_path: Path, layer_of: str, expected: str) -> None:
    stacks = {"x": {"modelyard:preset": "enterprise"}, "x-k8s": {"modelyard:layer_of": layer_of}}
    assert expected in _problems(tmp_path, stacks, "x-k8s")


def test_a_kubernetes_layer_of_a_one_stack_deployment_is_refused(tmp_path: Path) -> None:
    stacks = {"x": {"modelyard:preset": "minimal"}, "x-k8s": {"modelyard:layer_of": "x"}}
    message = _problems(tmp_path, stacks, "x-k8s")
    assert "modelyard:layer_of" in message
    assert "one-stack" in message


def test_secrets_of_the_aws_layer_file_must_be_set_in_the_kubernetes_layer(tmp_path: Path) -> None:
    """A stack cannot decrypt another's ciphertext: the Kubernetes layer must hold its own secrets."""
    secret = {"secure": "v1:AAAAAAAAAAAAAAAA:ciphertext"}
    stacks = {
        "x": {
            "modelyard:preset": "enterprise",
            "modelyard:monitoring": {"receivers": {"page": {"kind": "pagerduty", "secret": secret}}},
        },
        "x-k8s": {"modelyard:layer_of": "x"},
    }
    message = _problems(tmp_path, stacks, "x")
    assert "modelyard:monitoring.receivers.page.secret" in message
    assert "pulumi config set --secret" in message
    stacks["x-k8s"]["modelyard:monitoring"] = {"receivers": {"page": {"secret": secret}}}
    plan = plan_stack(_project(tmp_path / "fixed", stacks), "x")
    assert plan["stacks"] == ["x", "x-k8s"]


# --- upstream charts: where each Release takes its chart from, and what the runner's image holds ------------


def _table_chart(inputs: dict[str, Any]) -> UpstreamChart:
    """The table's entry a Release's chart is, by the runner's copy or the upstream reference."""
    (chart,) = [c for c in UPSTREAM_CHARTS.values() if inputs["chart"] in (c.bundle_path, c.reference)]
    return chart


def _run_instruction(marker: str) -> str:
    """The shell of the Dockerfile's RUN instruction containing `marker`, its lines joined as Docker does."""
    instructions = re.sub(r"\\\n", "", DOCKERFILE.read_text()).splitlines()
    (run,) = [i for i in instructions if i.startswith("RUN ") and marker in i]
    return run.removeprefix("RUN ")


@pytest.fixture(scope="module")
def image_bundle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The Dockerfile's pull of the charts, run by sh as `docker build` runs it, with a bare Python (no site
    packages, as in the build stage) and stand-ins for helm (writes the .tgz a pull would, named as the
    repository names it) and sha256sum (records what it is asked to check). No network, no Docker."""
    tmp = tmp_path_factory.mktemp("image")
    bin_dir, bundle = tmp / "bin", tmp / "bundle"
    bin_dir.mkdir()
    stubs = {
        "python": f'exec "{sys.executable}" -S "$@"',
        "helm": (
            f'echo "$@" >> "{tmp}/helm.log"\n'
            'ref=""; version=""; dest=""\n'
            'while [ $# -gt 0 ]; do case "$1" in\n'
            "  pull) ;; --repo) shift;; --version) version=$2; shift;; --destination) dest=$2; shift;;\n"
            "  *) ref=$1;; esac; shift; done\n"
            'echo chart > "$dest/$(basename "$ref")-v$version.tgz"'
        ),
        "sha256sum": f'echo "$*" >> "{tmp}/sha256sum.log"; cat >> "{tmp}/sha256sum.log"',
    }
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    result = subprocess.run(
        ["/bin/sh", "-c", _run_instruction("components.k8s.charts")],
        cwd=ROOT,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "CHART_BUNDLE": str(bundle), "HOME": str(tmp)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return {
        "files": sorted(p.name for p in bundle.iterdir()),
        "pulls": (tmp / "helm.log").read_text().splitlines(),
        "checks": (tmp / "sha256sum.log").read_text().splitlines(),
        "bundle": str(bundle),
    }


def test_the_runner_image_pulls_every_chart_of_the_table(image_bundle: dict[str, Any]) -> None:
    """deploy/runner.Dockerfile lists no chart: its build runs the table's module and pulls what it prints."""
    charts = sorted(UPSTREAM_CHARTS.values(), key=lambda c: c.name)
    assert image_bundle["files"] == [c.bundle_file for c in charts]
    destination = re.compile(r" --destination \S+$")
    assert [destination.sub("", pull) for pull in image_bundle["pulls"]] == [
        " ".join(("pull", *c.pull_args())) for c in charts
    ]
    # A digest the code knows is checked against the pulled file; the others are pinned by version only.
    known = [c for c in charts if c.sha256]
    assert known
    assert image_bundle["checks"] == [
        line for c in known for line in ("-c -", f"{c.sha256}  {image_bundle['bundle']}/{c.bundle_file}")
    ]
    dockerfile = DOCKERFILE.read_text()
    for chart in charts:
        assert not re.search(rf"(?<![\w.]){re.escape(chart.version)}(?![\w.])", dockerfile), chart.name
        assert chart.repository not in dockerfile, chart.name
    # The image holds them where the settings point: one fixed path, copied from the pull stage.
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, flags=re.M))
    assert args["CHART_BUNDLE"] == BUNDLE_DIR
    assert re.search(r"^COPY --from=charts \$\{CHART_BUNDLE\} \$\{CHART_BUNDLE\}$", dockerfile, flags=re.M)


def test_the_runner_image_checks_its_helm_against_helms_published_checksum() -> None:
    dockerfile = DOCKERFILE.read_text()
    version = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, flags=re.M))["HELM_VERSION"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    install = _run_instruction("get.helm.sh")
    tarball = "helm-v${HELM_VERSION}-linux-amd64.tar.gz"
    assert f"https://get.helm.sh/{tarball}.sha256sum" in install
    assert install.index(f'sha256sum -c "{tarball}.sha256sum"') < install.index(f'tar -xzf "{tarball}"')
    # Helm stays in the pull stage: the runner's own stage has no use for it.
    runner_stage = dockerfile.split("\nFROM ")[-1]
    assert "helm" not in runner_stage.lower()


def test_every_chart_of_the_table_is_installed_by_one_component() -> None:
    """The table holds what the kit installs and nothing else; no component pins a chart beside it."""
    sources = {p: p.read_text() for p in (ROOT / "components").rglob("*.py") if p.name != "charts.py"}
    for name in UPSTREAM_CHARTS:
        users = [p for p, text in sources.items() if f'UPSTREAM_CHARTS["{name}"]' in text]
        assert len(users) == 1, (name, users)
    for path, text in sources.items():
        assert "RepositoryOptsArgs" not in text, path


def test_each_release_takes_its_chart_where_its_deployment_can_reach(
    plans: dict[str, Any], image_bundle: dict[str, Any]
) -> None:
    """Split without NAT (core): every upstream Release reads a file the runner's image holds, nothing else;
    one stack (pilot, product): every Release names its pinned repository and version."""
    assert set(plans) == set(CHARTS_BY_STACK)
    in_image = {f"{BUNDLE_DIR}/{name}" for name in image_bundle["files"]}
    for stack, source in CHARTS_BY_STACK.items():
        releases = by_type(plans[stack], RELEASE)
        assert releases, stack
        for release in releases:
            inputs = release["inputs"]
            chart = _table_chart(inputs)
            assert inputs["version"] == chart.version, release["key"]
            if source is ChartSource.BUNDLED:
                assert inputs["chart"] in in_image, release["key"]
                assert inputs["chart"] == chart.bundle_path and "repositoryOpts" not in inputs, release["key"]
            else:
                assert inputs["chart"] == chart.reference, release["key"]
                repository = None if chart.oci else {"repo": chart.repository}
                assert inputs.get("repositoryOpts") == repository, release["key"]


def test_crd_charts_are_released_first_and_their_controllers_skip_their_crds(plans: dict[str, Any]) -> None:
    """A chart of the table that carries another's CRDs (crds_of) moves with it (same appVersion), is released
    in every deployment (bundled in core's runner image like the rest: the test above), adopts CRDs a cluster
    already has, and goes before its controller's release, which alone skips its crds/ folder."""
    crd_charts = {c.name: c for c in UPSTREAM_CHARTS.values() if c.crds_of}
    assert set(crd_charts) == {"karpenter-crd", "prometheus-operator-crds"}
    for chart in crd_charts.values():
        controller = UPSTREAM_CHARTS[chart.crds_of or ""]
        assert chart.app_version and chart.app_version == controller.app_version, chart.name
        assert controller.crds_of is None
    held = {c.crds_of for c in crd_charts.values()}
    for stack, plan in plans.items():
        by_chart: dict[str, dict[str, Any]] = {}
        for release in by_type(plan, RELEASE):
            name = _table_chart(release["inputs"]).name
            assert name not in by_chart, (stack, name)
            by_chart[name] = release
        for chart in crd_charts.values():
            crds, controller = by_chart[chart.name], by_chart[chart.crds_of or ""]
            assert crds["inputs"]["takeOwnership"] is True, (stack, chart.name)
            assert crds["key"] in controller["depends_on"], (stack, chart.name)
        for name, release in by_chart.items():
            assert release["inputs"].get("skipCrds", False) is (name in held), (stack, name)


def test_a_crd_release_is_only_for_a_crd_chart() -> None:
    import pulumi

    from components.k8s.crds import crd_release

    with pytest.raises(ValueError, match="keda is not a CRD chart"):
        crd_release(
            "x",
            chart=UPSTREAM_CHARTS["keda"],
            source=ChartSource.UPSTREAM,
            namespace="keda",
            values={},
            opts=pulumi.ResourceOptions(),
        )


def test_the_enterprise_preset_takes_its_charts_from_the_runner(make_settings) -> None:
    settings = make_settings("enterprise")
    assert settings.deploy.charts is ChartSource.BUNDLED
    assert make_settings("moderate").deploy.charts is ChartSource.UPSTREAM


def test_bundled_charts_need_the_runner(make_settings) -> None:
    with pytest.raises(InputError) as caught:
        make_settings("moderate", deploy={"charts": "bundled"})
    (problem,) = [p for p in caught.value.problems if p.path == "modelyard:deploy.charts"]
    assert "deploy.layers: split" in problem.message and "upstream" in problem.message


def test_a_runner_without_nat_cannot_fetch_upstream_charts(make_settings) -> None:
    with pytest.raises(InputError) as caught:
        make_settings("enterprise", deploy={"charts": "upstream"})
    (problem,) = [p for p in caught.value.problems if p.path == "modelyard:deploy.charts"]
    assert "network.nat: none" in problem.message and "bundled" in problem.message
    # With NAT the runner reaches the repositories: upstream is allowed, bundled too.
    for charts in ("upstream", "bundled"):
        settings = make_settings("enterprise", deploy={"charts": charts}, network={"nat": "single"})
        assert settings.deploy.charts.value == charts


def test_the_runner_build_context_holds_only_what_the_image_copies() -> None:
    """`.dockerignore` admits exactly the paths the Dockerfile COPYs from the context (not .venv, .git, stacks)."""
    copied = set()
    for line in DOCKERFILE.read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from=") for p in parts):
            copied.update(p.rstrip("/") for p in parts[1:-1])
    rules = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and line[0] != "#"
    ]
    assert rules[0] == "*"
    admitted = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert admitted == copied


def test_the_runner_runs_the_image_tag_the_stack_names(tmp_path: Path) -> None:
    """ECR tags are immutable: a rebuilt image (a chart or lock bump) ships under a tag of its own."""
    from components.platform import kit_version

    def image(plan: dict[str, Any]) -> str:
        (project,) = by_type(plan, "aws:codebuild/project:Project")
        return str(project["inputs"]["environment"]["image"])

    stacks: dict[str, dict[str, Any]] = {
        "core": {"modelyard:preset": "enterprise"},
        "core-k8s": {"modelyard:layer_of": "core"},
    }
    assert image(plan_stack(_project(tmp_path / "default", stacks), "core")).endswith(f":{kit_version()}")
    stacks["core"]["modelyard:deploy"] = {"runner_image_tag": "0.1.0-charts2"}
    assert image(plan_stack(_project(tmp_path / "tagged", stacks), "core")).endswith(":0.1.0-charts2")
    message = _problems(
        tmp_path / "one",
        {"x": {"modelyard:preset": "moderate", "modelyard:deploy": {"runner_image_tag": "0.1.0-charts2"}}},
        "x",
    )
    assert "modelyard:deploy.runner_image_tag: only with deploy.layers: split" in message
