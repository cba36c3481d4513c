"""LoadBalancerController: the AWS Load Balancer Controller, which keeps the gateway's pods registered in the
target group of the NLB the AWS layer created (components.aws.gateway_exposure) through a TargetGroupBinding.

Only Kubernetes objects here: the pinned chart of aws/eks-charts. Its AWS side (the Pod Identity role, a policy
that can register targets in that one target group and describe, nothing else, and the association with the
service account below) belongs to GatewayExposure.

What the chart is told, and why:
  - clusterName, region and vpcId explicitly: the controller would otherwise ask the instance metadata service,
    which pods cannot reach (the kit's nodes allow one IMDSv2 hop);
  - two replicas (leader election; the webhooks keep answering while one restarts), on the system node group;
  - the image through the registry the caller names: public.ecr.aws directly, or the ECR pull-through cache
    where nodes have no NAT (the controller then reaches the EC2 and Elastic Load Balancing APIs through the
    VPC's interface endpoints, which a stack without NAT has);
  - Shield, WAF and WAFv2 off (ALB-only add-ons the policy does not grant, and calls an isolated VPC cannot
    make), no IngressClass, no shared backend security group: nothing of the chart creates AWS resources.

Webhooks: the chart registers a mutating and a validating webhook for TargetGroupBindings, a pod mutator that
adds the target-health readiness gate in namespaces labelled elbv2.k8s.aws/pod-readiness-gate-inject=enabled
(the gateway's; failure policy Ignore), and a Service mutator. The API server calls them on port 9443 of the
controller's pods: EKS's control plane reaches the nodes through the cluster security group, which admits it.
Their certificate is self-signed by the chart at install. The Service mutator stays on: it gives new Services
of type LoadBalancer to this controller, whose policy cannot create load balancers, rather than to the legacy
in-tree controller, which would create a Classic Load Balancer with the cluster role's rights; its failure
policy is Ignore, so Services are never blocked while no controller pod answers (in that window only, a new
LoadBalancer Service would go to the in-tree controller). The Ingress validation webhook is off (no Ingress).

CRDs: the chart ships its seven CRDs (TargetGroupBinding, IngressClassParams, ... in crds/crds.yaml and
crds/gateway-crds.yaml) only in crds/, which Helm installs on the first install and never upgrades. Unlike
Karpenter and kube-prometheus-stack, upstream publishes no chart of them at 3.5.0 (the chart of tag v3.5.0 of
kubernetes-sigs/aws-load-balancer-controller, helm/aws-load-balancer-controller, has none; a CRD chart is still
asked for in aws/eks-charts issue 1219 and aws-load-balancer-controller issue 4870): its installation guide
(docs/deploy/installation.md at v3.5.0) has the operator apply the chart's CRDs before a `helm upgrade`. So this
release keeps installing them on a new cluster (no `skip_crds`), and a bump of the chart is preceded by that
step, from the pinned chart itself (docs/upgrades.md, "CRDs"). The kit does not copy the CRDs into its own tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.contract import (
    LOAD_BALANCER_CONTROLLER_NAMESPACE,
    LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT,
    ChartSource,
    system_node_selector,
)
from components.k8s.charts import UPSTREAM_CHARTS, chart_source

# The chart of aws/eks-charts (pinned with its digest in components/k8s/charts.py); its appVersion is IMAGE_TAG.
# Its image: public.ecr.aws/eks/aws-load-balancer-controller.
UPSTREAM_CHART = UPSTREAM_CHARTS["aws-load-balancer-controller"]
CHART = UPSTREAM_CHART.name
CHART_REPO = UPSTREAM_CHART.repository
CHART_VERSION = UPSTREAM_CHART.version
RELEASE = "aws-load-balancer-controller"
IMAGE_REGISTRY = "public.ecr.aws"
IMAGE_REPOSITORY = "eks/aws-load-balancer-controller"
IMAGE_TAG = "v3.5.0"
REPLICAS = 2


def controller_values(
    *,
    cluster_name: pulumi.Input[str],
    region: str,
    vpc_id: pulumi.Input[str],
    image_registry: pulumi.Input[str] = IMAGE_REGISTRY,
) -> dict[str, Any]:
    """The chart's values (inputs may be Outputs: the release resolves them)."""
    return {
        "clusterName": cluster_name,
        "region": region,
        "vpcId": vpc_id,
        "replicaCount": REPLICAS,
        "image": {
            "repository": f"{image_registry}/{IMAGE_REPOSITORY}"
            if isinstance(image_registry, str)
            else pulumi.Output.concat(image_registry, "/", IMAGE_REPOSITORY),
            "tag": IMAGE_TAG,
        },
        # Pod Identity binds this name to the controller role (no IRSA annotation).
        "serviceAccount": {"create": True, "name": LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT},
        "nodeSelector": system_node_selector(),
        "podDisruptionBudget": {"maxUnavailable": 1},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "enableShield": False,
        "enableWaf": False,
        "enableWafv2": False,
        "createIngressClassResource": False,
        "enableBackendSecurityGroup": False,
        # The Service mutator sees every new Service in the cluster: while no controller pod answers (first
        # install, both restarting) it must not block them. The kit creates no Ingress: no Ingress webhook.
        "serviceMutatorWebhookConfig": {"failurePolicy": "Ignore"},
        "webhookConfig": {"disableIngressValidation": True},
    }


@dataclass(frozen=True, kw_only=True)
class LoadBalancerControllerArgs:
    cluster_name: pulumi.Input[str]
    """The EKS cluster's name (the controller's --cluster-name)."""
    region: str
    """The cluster's region (--aws-region: pods cannot ask the instance metadata service)."""
    vpc_id: pulumi.Input[str]
    """The cluster's VPC (--aws-vpc-id, for the same reason)."""
    image_registry: pulumi.Input[str] | None = None
    """The registry serving ECR Public's images (the pull-through cache for stacks without NAT); default:
    public.ecr.aws."""
    charts: ChartSource = ChartSource.UPSTREAM
    """Where the chart comes from (deploy.charts)."""


class LoadBalancerController(pulumi.ComponentResource):
    """The pinned AWS Load Balancer Controller chart in kube-system, on the system nodes.

    Its credentials come from GatewayExposure's Pod Identity association, which should exist before the pods
    start: in one stack, depend on that component. TargetGroupBindings are its CRDs: depend on `release`.
    """

    release: k8s.helm.v3.Release

    def __init__(
        self, name: str, *, args: LoadBalancerControllerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("modelyard:k8s:LoadBalancerController", name, None, opts)
        chart, repository = chart_source(args.charts, UPSTREAM_CHART)
        self.release = k8s.helm.v3.Release(
            f"{name}-chart",
            name=RELEASE,
            chart=chart,
            version=UPSTREAM_CHART.version,
            repository_opts=repository,
            namespace=LOAD_BALANCER_CONTROLLER_NAMESPACE,
            values=controller_values(
                cluster_name=args.cluster_name,
                region=args.region,
                vpc_id=args.vpc_id,
                image_registry=args.image_registry or IMAGE_REGISTRY,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
