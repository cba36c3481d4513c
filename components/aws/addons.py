"""EKS add-on versions, pinned per Kubernetes version: the one table to edit when bumping (docs/cluster.md).

Where each version came from (read 2026-11, offline, from stored copies of the pages):
  - vpc-cni v1.20.1-eksbuild.3: the "Amazon VPC CNI versions" table of the EKS user guide
    (docs.aws.amazon.com/eks/latest/userguide/managing-vpc-cni.html, 1.33 row).
  - coredns v1.12.4-eksbuild.1: "CoreDNS versions" table (.../managing-coredns.html, 1.33 row).
  - kube-proxy v1.33.5-eksbuild.2: "kube-proxy versions" table (.../managing-kube-proxy.html, 1.33 row).
  - aws-ebs-csi-driver v1.41.0-eksbuild.1 and eks-pod-identity-agent v1.3.8-eksbuild.2: NOT VERIFIED for
    1.33 against an AWS table (the user guide publishes none for these two). Confirm before the first `up`:
      aws eks describe-addon-versions --kubernetes-version 1.33 --addon-name <name> \\
        --query 'addons[].addonVersions[].addonVersion'
  - aws-fsx-csi-driver v1.7.0-eksbuild.1: NOT VERIFIED for 1.33 either. The build is one AWS names (the EKS user
    guide's hybrid-nodes add-on table, awsdocs/amazon-eks-user-guide PR #1215, 2026-01: "v1.7.0-eksbuild.1 and
    above"); the driver's v1.7.0 was released 2025-11 (kubernetes-sigs/aws-fsx-csi-driver, chart 1.14.0), after
    aws/containers-roadmap#2625 (the add-on missing for 1.33, closed). The driver is at v1.9.0 upstream (2026-04).
The AWS tables move often; the user guide lists only the latest build. Any listed build stays installable.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

VPC_CNI = "vpc-cni"
KUBE_PROXY = "kube-proxy"
COREDNS = "coredns"
POD_IDENTITY_AGENT = "eks-pod-identity-agent"
EBS_CSI = "aws-ebs-csi-driver"
FSX_CSI = "aws-fsx-csi-driver"

ADDON_VERSIONS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "1.33": MappingProxyType(
            {
                VPC_CNI: "v1.20.1-eksbuild.3",
                KUBE_PROXY: "v1.33.5-eksbuild.2",
                COREDNS: "v1.12.4-eksbuild.1",
                POD_IDENTITY_AGENT: "v1.3.8-eksbuild.2",  # unverified, see above
                EBS_CSI: "v1.41.0-eksbuild.1",  # unverified for 1.33, see above
                FSX_CSI: "v1.7.0-eksbuild.1",  # unverified for 1.33, see above
            }
        ),
    }
)


def addon_versions(kubernetes_version: str) -> Mapping[str, str]:
    """Pinned add-on versions for a cluster version (settings allow only versions of this table)."""
    return ADDON_VERSIONS[kubernetes_version]
