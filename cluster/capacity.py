"""What the connected cluster holds now, and how far its autoscaler may grow it.

Read again while a run lasts, so that the trials a searcher gets follow nodes that join
(an autoscaler, `ray start`, KubeRay) and leave (scale-down, a lost spot node).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AutoscalerLimits", "ClusterShape", "NodeType", "autoscaler_limits", "cluster_shape"]


@dataclass(frozen=True)
class NodeType:
    """A worker node type an autoscaler may launch.

    Attributes:
        name: The type's name in the autoscaler's config (`cpu_node`).
        cpus: CPUs of one node.
        gpus: GPUs of one node.
        max_workers: The most nodes of this type; None when unbounded.
    """

    name: str
    cpus: float
    gpus: float
    max_workers: int | None


@dataclass(frozen=True)
class ClusterShape:
    """The alive nodes, and the autoscaler's limits where the cluster has one.

    Attributes:
        nodes: (CPUs, GPUs) of each alive node; GPUs None when not counted.
        node_types: The worker types an autoscaler may launch; empty without one.
        max_workers: The autoscaler's cap on worker nodes of all types; None when unset.
        workers: Alive worker nodes by type name (nodes the autoscaler launched).
    """

    nodes: tuple[tuple[float, float | None], ...]
    node_types: tuple[NodeType, ...] = ()
    max_workers: int | None = None
    workers: tuple[tuple[str, int], ...] = ()

    @property
    def autoscaling(self) -> bool:
        return bool(self.node_types)


@dataclass(frozen=True)
class AutoscalerLimits:
    """How far an autoscaler may grow the cluster.

    Attributes:
        node_types: The worker types it may launch.
        max_workers: Its cap on worker nodes of all types; None when unset.
    """

    node_types: tuple[NodeType, ...]
    max_workers: int | None = None


def autoscaler_limits() -> AutoscalerLimits | None:
    """The connected cluster's autoscaler limits, or None where there is no autoscaler (or
    its limits cannot be read: see the Ray boundary module). Ray must be initialized."""
    # Ray loads on first use, not when this module is imported; so does the Ray boundary.
    import ray

    from tunefleet.common.ray_compat import autoscaler_config

    config = autoscaler_config(ray.get_runtime_context().gcs_address)
    if config is None or not config["node_types"]:
        return None
    return AutoscalerLimits(
        node_types=tuple(
            NodeType(
                name=name,
                cpus=float(t["resources"].get("CPU", 0)),
                gpus=float(t["resources"].get("GPU", 0)),
                max_workers=t["max_workers"],
            )
            for name, t in sorted(config["node_types"].items())
        ),
        max_workers=config["max_workers"],
    )


def cluster_shape(limits: AutoscalerLimits | None = None) -> ClusterShape:
    """The cluster Ray is connected to, as it is now (Ray must be initialized).

    Args:
        limits: The autoscaler's limits (`autoscaler_limits`), read once by the caller:
            they do not change while the cluster runs.
    """
    # Ray loads on first use, not when this module is imported.
    import ray

    alive = [n for n in ray.nodes() if n.get("Alive")]
    nodes: tuple[tuple[float, float | None], ...] = tuple(
        (float(n.get("Resources", {}).get("CPU", 0)), float(n.get("Resources", {}).get("GPU", 0)))
        for n in alive
    )
    if limits is None:
        return ClusterShape(nodes=nodes)
    counts: dict[str, int] = {}
    for node in alive:
        kind = node.get("Labels", {}).get("ray.io/node-group") or _launched_type(
            node, limits.node_types
        )
        if kind is not None:
            counts[kind] = counts.get(kind, 0) + 1
    return ClusterShape(
        nodes=nodes,
        node_types=limits.node_types,
        max_workers=limits.max_workers,
        workers=tuple(sorted(counts.items())),
    )


def _launched_type(node: dict, types: tuple[NodeType, ...]) -> str | None:
    """The type of a worker node whose label does not say: the one type with its
    resources (the head, with other resources, matches none)."""
    resources = node.get("Resources", {})
    cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
    matches = [t.name for t in types if (t.cpus, t.gpus) == (cpus, gpus)]
    return matches[0] if len(matches) == 1 else None
