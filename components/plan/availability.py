"""What a plan's model servers survive, read from the objects the plan renders (so it is what the cluster would run):
replicas (the Deployment's fixed count, or its ScaledObject's bounds), zone spread, Karpenter's do-not-disrupt.

A model capped at one replica has no HA, and one whose minimum is one has none while the load keeps it there: the
plan says so (`serving.<model>.availability` in plan JSON, a line each in the text and markdown views).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

MODEL_LABEL = "modelyard.dev/model"
SERVER_COMPONENT = ("app.kubernetes.io/component", "model-server")
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"


class HighAvailability(StrEnum):
    NONE = "none"  # replicas.max 1: one server, whatever the load
    WHEN_SCALED_OUT = "when-scaled-out"  # replicas.min 1: one server while the load is low
    ALWAYS = "always"  # replicas.min 2 or more


def _template(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    if obj["kind"] == "LeaderWorkerSet":
        return obj["spec"]["leaderWorkerTemplate"]["leaderTemplate"]
    return obj["spec"]["template"]


def availability(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Model (its settings key) -> replicas {min, max}, `high_availability`, `zone_spread` (the spread's
    whenUnsatisfiable: DoNotSchedule a requirement, ScheduleAnyway best effort, None without spread) and
    `do_not_disrupt`."""
    objects = [m["object"] for m in manifests]
    scalers = {
        (o["metadata"].get("namespace"), o["spec"]["scaleTargetRef"]["name"]): o["spec"]
        for o in objects
        if o["kind"] == "ScaledObject"
    }
    out: dict[str, dict[str, Any]] = {}
    for obj in objects:
        labels = obj["metadata"].get("labels") or {}
        server = labels.get(SERVER_COMPONENT[0]) == SERVER_COMPONENT[1]
        if obj["kind"] not in ("Deployment", "LeaderWorkerSet") or not server:
            continue
        scaler = scalers.get((obj["metadata"].get("namespace"), obj["metadata"]["name"]))
        if scaler is not None:
            low, high = int(scaler["minReplicaCount"]), int(scaler["maxReplicaCount"])
        else:
            low = high = int(obj["spec"].get("replicas", 1))
        template = _template(obj)
        spread = template["spec"].get("topologySpreadConstraints") or [{}]
        out[labels[MODEL_LABEL]] = {
            "replicas": {"min": low, "max": high},
            "high_availability": (
                HighAvailability.NONE
                if high == 1
                else HighAvailability.WHEN_SCALED_OUT
                if low == 1
                else HighAvailability.ALWAYS
            ).value,
            "zone_spread": spread[0].get("whenUnsatisfiable"),
            "do_not_disrupt": (template["metadata"].get("annotations") or {}).get(DO_NOT_DISRUPT) == "true",
        }
    return dict(sorted(out.items()))


def availability_lines(plan: Mapping[str, Any]) -> list[str]:
    """One line a model: what it survives, in words."""
    lines = []
    for model, served in (plan.get("serving") or {}).items():
        a = served.get("availability")
        if a is None:
            continue
        low, high = a["replicas"]["min"], a["replicas"]["max"]
        count = f"{low} replica{'s' if low != 1 else ''}" if low == high else f"{low} to {high} replicas"
        if a["high_availability"] == HighAvailability.NONE:
            what = (
                "no HA: one server; Karpenter does not consolidate or replace its node for drift (do-not-disrupt), "
                "but a Spot interruption, a drain, a zone's loss or the node's loss stops it until a new one has "
                "loaded (set replicas.max to 2 or more for HA)"
            )
        elif a["high_availability"] == HighAvailability.WHEN_SCALED_OUT:
            what = (
                "no HA while the load keeps it at one replica; Karpenter does not consolidate or replace its nodes "
                "for drift (do-not-disrupt) (set replicas.min to 2 for HA)"
            )
        elif a["zone_spread"] == "DoNotSchedule":
            what = "HA, spread over the pool's zones as a requirement (no zone holds two before each holds one)"
        else:
            what = "HA within a zone (its pool is in one zone: spread is best effort)"
        lines.append(f"{model}: {count}; {what}")
    return lines
