"""The upstream Helm charts the kit installs: one table, and where each Release takes its chart from.

Every `helm.v3.Release` of an upstream chart (Karpenter, the device plugins, KEDA, the LeaderWorkerSet
controller, kube-prometheus-stack, the DCGM exporter, AWS for Fluent Bit, the AWS Load Balancer Controller) reads
its name, version and repository here; the kit's own chart (charts/llm-serving) is local and is not in the table.

The Kubernetes provider fetches a chart when it checks a Release (at `preview` and `up`), from its repository
(`deploy.charts: upstream`). A deploy runner inside a VPC without NAT cannot reach those repositories: with
`deploy.charts: bundled` each Release takes the .tgz the runner's image holds at BUNDLE_DIR, pulled when the
image is built (deploy/runner.Dockerfile runs this module to know what to pull; docs/deploy.md).

This module imports nothing outside the standard library at load: the image's build stage runs
`python -m components.k8s.charts` with a bare Python. It prints one line per chart:
`<file in BUNDLE_DIR> <sha256 of the .tgz, or -> <arguments of helm pull>`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from components.contract import ChartSource

if TYPE_CHECKING:
    from pulumi_kubernetes.helm.v3 import RepositoryOptsArgs

# Where the deploy runner's image holds the charts (deploy/runner.Dockerfile, ARG CHART_BUNDLE).
BUNDLE_DIR = "/opt/modelyard/charts"

# What every CRD chart's release (`crds_of`) puts on its CRDs, through the chart's value for annotations: Helm's
# annotation that keeps an object when its release is uninstalled or stops rendering it (components/k8s/crds.py).
CRD_ANNOTATIONS: Mapping[str, str] = MappingProxyType({"helm.sh/resource-policy": "keep"})


@dataclass(frozen=True, kw_only=True)
class UpstreamChart:
    name: str
    """The chart's name (for an OCI chart, the last part of its reference)."""
    version: str
    repository: str
    """A chart repository's https URL, or the oci:// registry path holding the chart."""
    sha256: str | None = None
    """The .tgz's digest, where the repository's index gives it: the image's build checks it."""
    app_version: str | None = None
    """The chart's appVersion, recorded where another chart of the table must match it (a CRD chart and the
    chart whose CRDs it carries)."""
    crds_of: str | None = None
    """For a chart that carries only the CRDs of another chart of the table: that chart's name. Helm never
    upgrades a chart's crds/ folder, so the kit installs such a chart as a release of its own, before the
    other, whose release skips its crds/ (docs/upgrades.md, "CRDs"). The two move together: same appVersion."""

    @property
    def oci(self) -> bool:
        return self.repository.startswith("oci://")

    @property
    def reference(self) -> str:
        """What Helm is asked for next to the repository: the chart's name, or an OCI chart's full reference."""
        return f"{self.repository}/{self.name}" if self.oci else self.name

    @property
    def bundle_file(self) -> str:
        return f"{self.name}-{self.version}.tgz"

    @property
    def bundle_path(self) -> str:
        """Where the deploy runner's image holds the chart."""
        return f"{BUNDLE_DIR}/{self.bundle_file}"

    def pull_args(self) -> tuple[str, ...]:
        """`helm pull` arguments that fetch exactly this chart (the destination is the caller's)."""
        if self.oci:
            return (self.reference, "--version", self.version)
        return (self.reference, "--repo", self.repository, "--version", self.version)


def _table(*charts: UpstreamChart) -> Mapping[str, UpstreamChart]:
    return MappingProxyType({chart.name: chart for chart in charts})


# Bump a chart here, and only here: the Releases, the runner image's bundle and the docs' checks follow.
UPSTREAM_CHARTS: Mapping[str, UpstreamChart] = _table(
    # Tag v1.7.3 of aws/karpenter-provider-aws. Runs on the system node group, which Karpenter does not manage.
    UpstreamChart(name="karpenter", version="1.7.3", app_version="1.7.3", repository="oci://public.ecr.aws/karpenter"),
    # Karpenter's CRDs as templates (Helm upgrades them), the chart Karpenter's upgrade guide recommends ("CRD
    # Upgrades", website/content/en/v1.7/upgrading/upgrade-guide.md). Tag v1.7.3 (4abf6732) of
    # aws/karpenter-provider-aws: hack/release/common.sh publishes charts/karpenter-crd beside charts/karpenter,
    # same version and appVersion, to public.ecr.aws/karpenter; its four templates are the CRDs the karpenter
    # chart's crds/ links to (pkg/apis/crds), plus `additionalAnnotations`.
    UpstreamChart(
        name="karpenter-crd",
        version="1.7.3",
        app_version="1.7.3",
        repository="oci://public.ecr.aws/karpenter",
        crds_of="karpenter",
    ),
    # github.com/NVIDIA/k8s-device-plugin; 0.18.0 is the version NVIDIA's install guide pins.
    UpstreamChart(
        name="nvidia-device-plugin", version="0.18.0", repository="https://nvidia.github.io/k8s-device-plugin"
    ),
    # aws/eks-charts aws-efa-k8s-device-plugin 0.5.10.
    UpstreamChart(name="aws-efa-k8s-device-plugin", version="0.5.10", repository="https://aws.github.io/eks-charts"),
    # kubernetes-sigs/lws tag v0.10.0 (2161f38f, 2026-08-11): the LeaderWorkerSet controller, which runs a model
    # whose replica spans several nodes (charts/llm-serving renders a LeaderWorkerSet then). hack/push-chart.sh
    # packages charts/lws with the release's version and pushes it to registry.k8s.io/lws/charts; the
    # installation guide (site/content/en/docs/installation/_index.md) installs CHART_VERSION=0.10.0 from
    # oci://registry.k8s.io/lws/charts/lws. Its CRDs live only in crds/ and upstream publishes no CRD chart:
    # the release installs them on a new cluster, a bump applies the new chart's crds/ first (that guide,
    # "Upgrade by Helm"; docs/upgrades.md, "CRDs").
    UpstreamChart(name="lws", version="0.10.0", app_version="v0.10.0", repository="oci://registry.k8s.io/lws/charts"),
    # github.com/kedacore/charts, chart keda 2.19.0.
    UpstreamChart(name="keda", version="2.19.0", repository="https://kedacore.github.io/charts"),
    # prometheus-community/helm-charts charts/kube-prometheus-stack/Chart.yaml at commit ea930bae (2026-08-21):
    # version 88.5.3, appVersion v0.93.1 (Prometheus Operator). Subcharts it pins: kube-state-metrics 8.4.0
    # (kube-state-metrics v2.20.0), prometheus-node-exporter 4.56.1 (node-exporter 1.12.1), grafana 12.11.1.
    UpstreamChart(
        name="kube-prometheus-stack",
        version="88.5.3",
        app_version="v0.93.1",
        repository="https://prometheus-community.github.io/helm-charts",
    ),
    # The Prometheus Operator's CRDs as templates, from the same repository: charts/prometheus-operator-crds/
    # Chart.yaml at tag prometheus-operator-crds-31.0.1 (commit 4529d7bb, 2026-08-10): version 31.0.1, appVersion
    # v0.93.1, kube-prometheus-stack 88.5.3's operator; its ten CRDs are, template lines aside, byte for byte the
    # ones kube-prometheus-stack 88.5.3 carries in charts/crds/crds/. It keeps them in a subchart's templates,
    # which Helm does not copy into the release's Secret (the rendered CRDs alone, about 0.6 MB encoded, stay
    # under a Secret's 1 MiB; helm-charts issue 3654, PR 3771).
    UpstreamChart(
        name="prometheus-operator-crds",
        version="31.0.1",
        app_version="v0.93.1",
        repository="https://prometheus-community.github.io/helm-charts",
        crds_of="kube-prometheus-stack",
    ),
    # NVIDIA/dcgm-exporter deployment/Chart.yaml at tag 4.5.3-4.8.2 (commit 691c9276, 2026-05-06): chart 4.8.2;
    # its values.yaml defaults the image to tag 4.5.3-4.8.2 (DCGM 4.5.3, exporter 4.8.2). Repository from its
    # README.
    UpstreamChart(
        name="dcgm-exporter", version="4.8.2", repository="https://nvidia.github.io/dcgm-exporter/helm-charts"
    ),
    # aws/eks-charts stable/aws-for-fluent-bit/Chart.yaml at commit 2942cdce (2026-02-03): chart 0.2.0, image
    # public.ecr.aws/aws-observability/aws-for-fluent-bit:3.2.1. Repository from the eks-charts README.
    UpstreamChart(name="aws-for-fluent-bit", version="0.2.0", repository="https://aws.github.io/eks-charts"),
    # aws/eks-charts index.yaml (gh-pages): aws-load-balancer-controller 3.5.0, appVersion v3.5.0, created
    # 2026-08-03, with this digest; the chart of tag v3.5.0 of kubernetes-sigs/aws-load-balancer-controller.
    # Its CRDs are only in its crds/, and no CRD chart of them exists: see components/k8s/load_balancer_controller.py.
    UpstreamChart(
        name="aws-load-balancer-controller",
        version="3.5.0",
        repository="https://aws.github.io/eks-charts",
        sha256="45051f634b33e10baccb3354d0681b7de787c60445e599fa276e0c9aedd4ccd5",
    ),
)


def chart_source(source: ChartSource, chart: UpstreamChart) -> tuple[str, RepositoryOptsArgs | None]:
    """A Release's `chart` and `repository_opts`: the image's .tgz with `bundled` (no repository: the provider
    must not look anywhere else), else the chart in its repository (an OCI chart names its registry itself)."""
    if source is ChartSource.BUNDLED:
        return chart.bundle_path, None
    if chart.oci:
        return chart.reference, None
    # Imported here, not above: the image's build stage runs this module without Pulumi installed.
    from pulumi_kubernetes.helm.v3 import RepositoryOptsArgs

    return chart.reference, RepositoryOptsArgs(repo=chart.repository)


def bundle_lines() -> list[str]:
    """What the runner image's build pulls, one chart a line: file, sha256 (or -), helm pull arguments."""
    return [
        " ".join((chart.bundle_file, chart.sha256 or "-", *chart.pull_args()))
        for chart in sorted(UPSTREAM_CHARTS.values(), key=lambda c: c.name)
    ]


if __name__ == "__main__":
    sys.stdout.write("".join(f"{line}\n" for line in bundle_lines()))
