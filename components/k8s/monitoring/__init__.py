"""Monitoring: kube-prometheus-stack and the DCGM exporter (pinned), the kit's dashboards and alert rules.

``Monitoring`` installs it all; ``values`` holds the pins, the scrape contract other components follow
(labels, namespace, job names) and the Helm values from the monitoring settings; ``assets`` turns the rule and
dashboard files into Kubernetes objects; ``generate`` rewrites the files derived from the catalog; ``logs`` holds
``ContainerLogs`` (Fluent Bit to CloudWatch Logs; import it from there: it needs pulumi_aws).
docs/monitoring.md describes what is installed and why.
"""

from components.k8s.monitoring.component import Monitoring, MonitoringArgs
from components.k8s.monitoring.values import (
    MONITORING_NAMESPACE,
    PROMETHEUS_POD_LABELS,
    PROMETHEUS_URL,
    SCRAPE_SELECTOR_LABELS,
    SERVING_CONTAINER,
    VLLM_IMAGE,
    VLLM_IMAGE_TAG,
    dcgm_exporter_values,
    monitoring_values,
)

__all__ = [
    "MONITORING_NAMESPACE",
    "PROMETHEUS_POD_LABELS",
    "PROMETHEUS_URL",
    "SCRAPE_SELECTOR_LABELS",
    "SERVING_CONTAINER",
    "VLLM_IMAGE",
    "VLLM_IMAGE_TAG",
    "Monitoring",
    "MonitoringArgs",
    "dcgm_exporter_values",
    "monitoring_values",
]
