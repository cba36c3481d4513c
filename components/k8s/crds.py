"""CRD releases: an upstream controller's CRDs as a Helm release of their own, installed before the controller.

Helm installs a chart's `crds/` folder on the first install only: `helm upgrade` never changes those CRDs and
`helm uninstall` never deletes them (Helm's documentation, "Custom Resource Definitions"; helm/helm v3.20.2
pkg/action/install.go, `installCRDs`, which also skips a CRD that exists). Pulumi's `helm.v3.Release` runs the
same Helm code. Where upstream publishes the CRDs as a chart that templates them (`crds_of` in
components/k8s/charts.py), the kit installs that chart as its own release, and the controller's release skips
its `crds/` folder (`skip_crds`): one owner per CRD, upgraded by Helm with the chart's version.

Every CRD release is built here, alike:

- `take_ownership`: the CRDs a cluster installed before already exist, created by the controller chart's first
  install without Helm's ownership metadata. Helm's install stops on them ("CustomResourceDefinition "<name>"
  in namespace "" exists and cannot be imported into the current release: invalid ownership metadata; label
  validation error: missing key "app.kubernetes.io/managed-by": must be set to "Helm"; annotation validation
  error: missing key "meta.helm.sh/release-name" ...": helm/helm v3.20.2 pkg/action/validate.go,
  `existingResourceConflict`), unless told to take ownership (Helm's `--take-ownership`: `Install.TakeOwnership`
  in pkg/action/install.go adopts what exists; the Release's `take_ownership` since pulumi-kubernetes PR 4476).
  The first `up` after this change adopts them (docs/upgrades.md, "CRDs").
- the CRDs carry `helm.sh/resource-policy: keep` (CRD_ANNOTATIONS, through each chart's value for
  annotations): deleting a CRD deletes every object of its kind (Karpenter's NodePools and NodeClaims, with
  their nodes; every ServiceMonitor and PrometheusRule). Helm leaves them in place when the release is
  uninstalled or replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.contract import ChartSource
from components.k8s.charts import UpstreamChart, chart_source


def crd_release(
    resource_name: str,
    *,
    chart: UpstreamChart,
    source: ChartSource,
    namespace: pulumi.Input[str],
    values: Mapping[str, Any],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    """The release of `chart` (a chart with `crds_of`), named like the chart, where Helm keeps its record in
    `namespace`; the controller's release must depend on it and skip its own `crds/`."""
    if chart.crds_of is None:
        raise ValueError(f"{chart.name} is not a CRD chart (crds_of is unset in components/k8s/charts.py)")
    location, repository = chart_source(source, chart)
    return k8s.helm.v3.Release(
        resource_name,
        name=chart.name,
        chart=location,
        version=chart.version,
        repository_opts=repository,
        namespace=namespace,
        values=dict(values),
        take_ownership=True,
        opts=opts,
    )
