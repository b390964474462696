"""The cluster definitions in cluster/: valid for Ray 2.60 and KubeRay, and safe by default.

Launcher configs (cluster/*.yaml) are checked the way `ray up` checks them: Ray's own
`prepare_config` (merge with the provider defaults) then `validate_config` (Ray's JSON schema,
ray/autoscaler/ray-schema.json, plus its cross-field rules). KubeRay manifests are checked
against pruned copies of the ray.io/v1 CRD schemas in tests/cluster/data/, with unknown
fields rejected as the API server does. No Ray instance, cluster or network is needed.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import ray.autoscaler
import yaml
from packaging.requirements import Requirement
from packaging.version import Version
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.support.specs import spec_dict
from tunefleet.cluster.capacity import ClusterShape, NodeType
from tunefleet.common.ray_compat import SUPPORTED, minor
from tunefleet.experiments.spec.loading import validate_spec
from tunefleet.experiments.spec.slots import shape_slots

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - pytest depends on tomli below 3.11
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
DATA = Path(__file__).resolve().parent / "data"

LAUNCHER_CONFIGS = ["local", "aws", "gcp", "azure"]
CLOUD_CONFIGS = ["aws", "gcp", "azure"]
STORAGE_SCHEMES = {"aws": "s3://", "gcp": "gs://", "azure": "abfs://"}
MANIFESTS = {
    "raycluster": ("RayCluster", "ray.io_rayclusters.v1.pruned.yaml"),
    "rayjob": ("RayJob", "ray.io_rayjobs.v1.pruned.yaml"),
}
RAY_SCHEMA = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


# --- helpers -------------------------------------------------------------------------------


def _launcher(name: str) -> dict[str, Any]:
    return yaml.safe_load((CLUSTER / f"{name}.yaml").read_text())


def _manifest(name: str) -> dict[str, Any]:
    return yaml.safe_load((CLUSTER / "kuberay" / f"{name}.yaml").read_text())


def _validate_like_ray_up(config: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` does before touching a cloud: fill in defaults, then validate."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def _pyproject_dependency(name: str) -> str:
    """The dependency as pyproject.toml writes it, e.g. `ray[tune]>=2.60,<2.61`."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return next(d for d in project["dependencies"] if Requirement(d).name.lower() == name)


def _pyproject_requirement(name: str) -> Requirement:
    return Requirement(_pyproject_dependency(name))


def _pins(commands: list[str], package: str) -> list[Version]:
    """Versions pinned with `package==X` or `package[extras]==X` in pip commands."""
    pattern = rf"\b{re.escape(package)}(?:\[[^\]]*\])?==([0-9][0-9A-Za-z.]*)"
    return [Version(v) for c in commands for v in re.findall(pattern, c)]


def _ray_start_commands(config: dict[str, Any]) -> list[str]:
    commands = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    return [c for c in commands if "ray start" in c]


def _strict(schema: Any) -> Any:
    """The CRD schema as the API server applies it: unknown fields are errors.

    A CRD lists its properties but never says `additionalProperties: false`; the API server
    rejects (strict field validation) or drops unknown fields itself. Objects that are maps
    (`additionalProperties` given) or deliberately open (`x-kubernetes-preserve-unknown-fields`)
    stay open.
    """
    if isinstance(schema, dict):
        strict = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in strict
            and "additionalProperties" not in strict
            and not strict.get("x-kubernetes-preserve-unknown-fields")
        ):
            strict["additionalProperties"] = False
        return strict
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def _crd_validator(manifest: str) -> jsonschema.Draft7Validator:
    vendored = yaml.safe_load((DATA / MANIFESTS[manifest][1]).read_text())
    schema = _strict(vendored["openAPIV3Schema"])
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _crd_errors(manifest: str, document: dict[str, Any]) -> list[str]:
    errors = _crd_validator(manifest).iter_errors(document)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def _cluster_spec(document: dict[str, Any]) -> dict[str, Any]:
    spec = document["spec"]
    return spec["rayClusterSpec"] if document["kind"] == "RayJob" else spec


def _ray_containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    spec = _cluster_spec(document)
    templates = [spec["headGroupSpec"]["template"]]
    templates += [group["template"] for group in spec["workerGroupSpecs"]]
    return [c for t in templates for c in t["spec"]["containers"]]


SECRET_PATTERNS = {
    "AWS access key id": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "AWS secret key setting": r"(?i)aws_secret_access_key",
    "private key block": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "GCP service-account key": r'"private_key(?:_id)?"\s*:',
    "Azure storage key": r"(?i)AccountKey=|SharedAccessSignature=|[?&]sig=",
    "literal Ray token": r"""RAY_AUTH_TOKEN\s*[=:]\s*(?!["']?\$|\s|\Z)\S""",
    "literal Ray token in a Kubernetes env": r"name:\s*RAY_AUTH_TOKEN\s*\n\s*value:",
    "token-like hex string": r"\b[0-9a-fA-F]{32,}\b",
}


def _secrets_in(text: str) -> list[str]:
    return [what for what, pattern in SECRET_PATTERNS.items() if re.search(pattern, text)]


# --- launcher configs: Ray's schema ---------------------------------------------------------


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_passes_rays_own_validation(name: str) -> None:
    config = _launcher(name)
    jsonschema.validate(config, RAY_SCHEMA)  # the file as written
    prepared = _validate_like_ray_up(config)  # and as `ray up` completes it
    assert prepared["provider"]["type"] == name
    assert prepared["cluster_name"].startswith("tunefleet")


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_rays_validation_rejects_an_unknown_top_level_key(name: str) -> None:
    broken = _launcher(name)
    broken["max_wrokers"] = 3
    with pytest.raises(
        jsonschema.ValidationError,
        match=r"Additional properties are not allowed \('max_wrokers' was unexpected\)",
    ):
        _validate_like_ray_up(broken)


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_rays_validation_rejects_a_wrong_type(name: str) -> None:
    broken = _launcher(name)
    broken["idle_timeout_minutes"] = "five"
    with pytest.raises(jsonschema.ValidationError, match=r"'five' is not of type 'number'"):
        _validate_like_ray_up(broken)


@pytest.mark.parametrize("name", CLOUD_CONFIGS)
def test_rays_validation_rejects_a_node_type_without_resources(name: str) -> None:
    broken = _launcher(name)
    gpu_type = next(t for t, v in broken["available_node_types"].items() if "GPU" in v["resources"])
    del broken["available_node_types"][gpu_type]["resources"]
    with pytest.raises(jsonschema.ValidationError, match=r"'resources' is a required property"):
        _validate_like_ray_up(broken)


@pytest.mark.parametrize("name", CLOUD_CONFIGS)
def test_rays_validation_rejects_min_workers_above_the_global_max(name: str) -> None:
    broken = _launcher(name)
    broken["max_workers"] = 0
    with pytest.raises(ValueError, match=r"smaller than the sum of `min_workers`"):
        _validate_like_ray_up(broken)


# --- launcher configs: node types and bounds ------------------------------------------------


@pytest.mark.parametrize("name", CLOUD_CONFIGS)
def test_cloud_config_has_a_head_a_cpu_and_a_gpu_worker_type_with_bounds(name: str) -> None:
    config = _launcher(name)
    types = config["available_node_types"]
    head = config["head_node_type"]
    assert head in types
    assert types[head]["resources"].get("CPU") == 0, "trials never run on the head"
    workers = {t: v for t, v in types.items() if t != head}
    gpu = [t for t, v in workers.items() if v["resources"].get("GPU", 0) >= 1]
    cpu = [t for t, v in workers.items() if v["resources"].get("GPU", 0) == 0]
    assert len(gpu) == 1 and len(cpu) == 1, workers
    for node_type in workers.values():
        assert isinstance(node_type["min_workers"], int)
        assert isinstance(node_type["max_workers"], int)
        assert 0 <= node_type["min_workers"] <= node_type["max_workers"] <= config["max_workers"]
        assert node_type["resources"]["CPU"] >= 1
    assert sum(v["min_workers"] for v in workers.values()) <= config["max_workers"]
    assert types[gpu[0]]["min_workers"] == 0, "GPUs cost nothing while no trial needs one"


@pytest.mark.parametrize("name", CLOUD_CONFIGS)
def test_cloud_config_autoscales_a_default_spec_from_one_worker(name: str) -> None:
    """The autoscaler's settings, and what a default 1-CPU spec makes of them on the head
    (the limits tunefleet reads there): it starts on the one CPU worker, keeps trials
    waiting for the CPU workers the autoscaler may still add, and never for GPU nodes."""
    config = _launcher(name)
    assert 0 < config["upscaling_speed"] <= 2
    assert 1 <= config["idle_timeout_minutes"] <= 15, "idle workers are released"
    head = config["head_node_type"]
    workers = {t: v for t, v in config["available_node_types"].items() if t != head}
    assert all(v["min_workers"] in (0, 1) for v in workers.values())
    types = tuple(
        NodeType(
            name=t,
            cpus=v["resources"]["CPU"],
            gpus=v["resources"].get("GPU", 0),
            max_workers=v["max_workers"],
        )
        for t, v in workers.items()
    )
    (cpu,) = [t for t in types if t.gpus == 0]
    shape = ClusterShape(
        nodes=((0, 0), (cpu.cpus, 0)),
        node_types=types,
        max_workers=config["max_workers"],
        workers=((cpu.name, 1),),
    )
    spec = validate_spec({**spec_dict(), "search": {"algorithm": "optuna"}})
    slots = shape_slots(spec, shape)
    assert cpu.max_workers is not None
    assert (slots.fits, slots.cap) == (cpu.cpus, cpu.cpus * cpu.max_workers)
    assert slots.growth == f"{cpu.max_workers - 1} x {cpu.name}"


def test_the_kuberay_cluster_autoscales_its_worker_groups() -> None:
    spec = _cluster_spec(_manifest("raycluster"))
    assert spec["enableInTreeAutoscaling"] is True
    assert 60 <= spec["autoscalerOptions"]["idleTimeoutSeconds"] <= 900
    for group in spec["workerGroupSpecs"]:
        assert group["minReplicas"] in (0, 1) and group["maxReplicas"] > group["minReplicas"]


def test_local_config_lists_documentation_addresses_and_lets_every_worker_join() -> None:
    config = _launcher("local")
    provider = config["provider"]
    assert "available_node_types" not in config, "`ray up` aborts on node types for local"
    documentation_net = ipaddress.ip_network("192.0.2.0/24")  # RFC 5737 TEST-NET-1
    for host in [provider["head_ip"], *provider["worker_ips"]]:
        assert ipaddress.ip_address(host) in documentation_net, host
    prepared = _validate_like_ray_up(config)
    (node_type,) = prepared["available_node_types"].values()
    assert node_type["min_workers"] == node_type["max_workers"] == len(provider["worker_ips"])


# --- launcher configs: installation ---------------------------------------------------------


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_every_node_installs_tunefleet_with_the_pinned_ray_and_torch(name: str) -> None:
    prepared = _validate_like_ray_up(_launcher(name))
    ray_range = _pyproject_requirement("ray").specifier
    torch_range = _pyproject_requirement("torch").specifier
    # `ray up` runs setup_commands + head_setup_commands on the head and
    # setup_commands + worker_setup_commands on each worker.
    for role in ("head_setup_commands", "worker_setup_commands"):
        commands = prepared[role]
        assert any(re.search(r"pip install .*tunefleet-\*\.whl", c) for c in commands), role
        (ray_pin,) = set(_pins(commands, "ray"))
        (torch_pin,) = set(_pins(commands, "torch"))
        assert ray_pin in ray_range, f"{role}: ray=={ray_pin} is outside pyproject's {ray_range}"
        # The shipped files use the newest Ray of the window (users pick theirs, see README).
        assert minor(str(ray_pin)) == SUPPORTED[1], f"{role}: ray=={ray_pin}"
        assert torch_pin in torch_range, f"{role}: torch=={torch_pin} is outside {torch_range}"
    images = [prepared.get("docker", {}).get("image")]
    images += [
        t.get("docker", {}).get("worker_image") for t in prepared["available_node_types"].values()
    ]
    for image in filter(None, images):
        assert image.startswith(f"rayproject/ray:{ray_pin}-py311-"), image  # the pip pin
    # The config names the pyproject range its pins come from.
    assert _pyproject_dependency("ray") in (CLUSTER / f"{name}.yaml").read_text()


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_wheel_and_specs_reach_the_nodes_through_file_mounts(name: str) -> None:
    mounts = _launcher(name)["file_mounts"]
    assert mounts["~/tunefleet-dist"] == "./dist"
    assert mounts["~/experiments"] == "./experiments"
    assert (REPO / "experiments" / "quickstart.yaml").exists()


# --- launcher configs: security -------------------------------------------------------------


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_token_auth_stays_on_with_the_token_file_copied_not_written(name: str) -> None:
    config = _launcher(name)
    # The token travels as a file from the user's machine; the config holds only its path.
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    starts = _ray_start_commands(config)
    assert len(starts) == 2, starts  # one for the head, one for the workers
    for command in starts:
        assert "RAY_AUTH_MODE=token ray start" in command, command
    text = (CLUSTER / f"{name}.yaml").read_text()
    assert not re.search(r"RAY_AUTH_MODE=(?!token)", text)
    assert any("chmod 600 ~/.ray/auth_token" in c for c in config["setup_commands"])


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_dashboard_stays_on_the_heads_loopback_interface(name: str) -> None:
    config = _launcher(name)
    assert "0.0.0.0" not in (CLUSTER / f"{name}.yaml").read_text()
    (head_start,) = [c for c in config["head_start_ray_commands"] if "ray start --head" in c]
    hosts = re.findall(r"--dashboard-host[= ](\S+)", head_start)
    assert hosts in ([], ["127.0.0.1"]), hosts
    # Ray's own defaults would open it if our start command were dropped by the merge.
    prepared = _validate_like_ray_up(config)
    assert "0.0.0.0" not in " ".join(prepared["head_start_ray_commands"])
    text = (CLUSTER / f"{name}.yaml").read_text()
    assert f"ray dashboard cluster/{name}.yaml" in text
    assert "ssh -L 8265:localhost:8265" in text


def test_secret_scanner_finds_what_it_looks_for() -> None:
    assert _secrets_in("key: AKIAABCDEFGHIJKLMNOP") == ["AWS access key id"]
    assert _secrets_in("export RAY_AUTH_TOKEN=s3cr3t") == ["literal Ray token"]
    assert _secrets_in("- name: RAY_AUTH_TOKEN\n  value: s3cr3t") == [
        "literal Ray token in a Kubernetes env"
    ]
    assert _secrets_in(f"token: {'ab' * 32}") == ["token-like hex string"]
    assert _secrets_in('RAY_AUTH_TOKEN="$(cat ~/.ray/auth_token)"') == []
    assert _secrets_in("env RAY_AUTH_MODE=token, key path ~/.ssh/id_rsa") == []


@pytest.mark.parametrize(
    "path",
    [f"{n}.yaml" for n in LAUNCHER_CONFIGS]
    + [f"kuberay/{n}.yaml" for n in MANIFESTS]
    + ["README.md"],
)
def test_no_credentials_or_tokens_in_cluster_files(path: str) -> None:
    assert _secrets_in((CLUSTER / path).read_text()) == []


# --- launcher configs: results --------------------------------------------------------------


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_results_go_to_storage_that_every_node_shares(name: str) -> None:
    from tunefleet.experiments.arguments import parser

    config = _launcher(name)
    tunefleet = config["metadata"]["tunefleet"]
    storage = tunefleet["storage"]
    if name == "local":
        assert storage.startswith("/mnt/tunefleet/")
        (mount,) = [c for c in config["initialization_commands"] if "mount -t nfs" in c]
        mountpoint = re.search(r"mount -t nfs \S+ (\S+?)\)?$", mount).group(1)
        assert storage.startswith(mountpoint + "/"), "the NFS export is mounted where storage lives"
    else:
        assert storage.startswith(STORAGE_SCHEMES[name])
    # The documented command is one the real tunefleet CLI accepts, aimed at that storage.
    argv = shlex.split(tunefleet["run"])
    assert argv[0] == "tunefleet"
    args = parser().parse_args(argv[1:])
    assert (args.command, args.address, args.storage) == ("run", "auto", storage)
    assert f"--storage {storage}" in (CLUSTER / f"{name}.yaml").read_text().split("metadata:")[0]


# --- KubeRay manifests ----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MANIFESTS))
def test_kuberay_manifest_matches_the_ray_io_v1_crd_schema(name: str) -> None:
    document = _manifest(name)
    assert (document["apiVersion"], document["kind"]) == ("ray.io/v1", MANIFESTS[name][0])
    assert _crd_errors(name, document) == []


def test_crd_schema_rejects_a_misspelled_rayjob_field() -> None:
    document = _manifest("rayjob")
    document["spec"]["rayClusterSpc"] = document["spec"].pop("rayClusterSpec")
    assert _crd_errors("rayjob", document) == [
        "spec: Additional properties are not allowed ('rayClusterSpc' was unexpected)"
    ]


def test_crd_schema_rejects_a_misspelled_field_deep_in_a_pod_template() -> None:
    document = _manifest("raycluster")
    container = document["spec"]["workerGroupSpecs"][1]["template"]["spec"]["containers"][0]
    container["imagee"] = container.pop("image")
    assert _crd_errors("raycluster", document) == [
        "spec.workerGroupSpecs.1.template.spec.containers.0: Additional properties are not allowed ('imagee' was unexpected)"
    ]


def test_crd_schema_rejects_wrong_types_and_missing_required_fields() -> None:
    document = _manifest("raycluster")
    spec = document["spec"]
    spec["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0  # must be the string "0"
    del spec["workerGroupSpecs"][0]["groupName"]
    assert sorted(_crd_errors("raycluster", document)) == [
        "spec.headGroupSpec.rayStartParams.num-cpus: 0 is not of type 'string'",
        "spec.workerGroupSpecs.0: 'groupName' is a required property",
    ]


def test_vendored_crd_schemas_name_their_source_and_stay_small() -> None:
    total = 0
    for kind, filename in MANIFESTS.values():
        text = (DATA / filename).read_text()
        total += len(text.encode())
        source = yaml.safe_load(text)["source"]
        assert source["repository"] == "https://github.com/ray-project/kuberay"
        assert source["path"] == f"ray-operator/config/crd/bases/ray.io_{kind.lower()}s.yaml"
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"])
        assert (source["version"], source["kind"]) == ("v1", kind)
        assert text.startswith("# PRUNED copy") and source["commit"] in text.split("\n\n")[0]
    assert total < 200_000


@pytest.mark.parametrize("name", list(MANIFESTS))
def test_kuberay_cluster_has_a_head_a_cpu_and_a_gpu_group_with_autoscaling_bounds(
    name: str,
) -> None:
    spec = _cluster_spec(_manifest(name))
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    for group in groups.values():
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    (gpu_container,) = groups["gpu"]["template"]["spec"]["containers"]
    assert gpu_container["resources"]["limits"]["nvidia.com/gpu"] >= 1
    assert gpu_container["image"].endswith("-gpu")
    (cpu_container,) = groups["cpu"]["template"]["spec"]["containers"]
    assert "nvidia.com/gpu" not in cpu_container["resources"]["limits"]


@pytest.mark.parametrize("name", list(MANIFESTS))
def test_kuberay_images_and_ray_version_match_the_pinned_ray(name: str) -> None:
    document = _manifest(name)
    spec = _cluster_spec(document)
    assert minor(spec["rayVersion"]) == SUPPORTED[1]  # the newest Ray of the window
    assert Version(spec["rayVersion"]) in _pyproject_requirement("ray").specifier
    containers = _ray_containers(document)
    if name == "rayjob":
        containers += document["spec"]["submitterPodTemplate"]["spec"]["containers"]
    for container in containers:
        assert container["image"].startswith(f"rayproject/ray:{spec['rayVersion']}-py311-")


@pytest.mark.parametrize("name", list(MANIFESTS))
def test_kuberay_token_comes_from_a_secret_for_every_ray_process(name: str) -> None:
    document = _manifest(name)
    spec = _cluster_spec(document)
    env_lists = [c.get("env", []) for c in _ray_containers(document)]
    env_lists.append(spec["autoscalerOptions"]["env"])
    if name == "rayjob":
        env_lists += [
            c.get("env", []) for c in document["spec"]["submitterPodTemplate"]["spec"]["containers"]
        ]
    for env in env_lists:
        variables = {e["name"]: e for e in env}
        assert variables["RAY_AUTH_MODE"]["value"] == "token"
        token = variables["RAY_AUTH_TOKEN"]
        assert "value" not in token, "never a literal token"
        assert token["valueFrom"]["secretKeyRef"] == {"name": "ray-auth-token", "key": "auth_token"}
    text = (CLUSTER / "kuberay" / f"{name}.yaml").read_text()
    assert "kubectl create secret generic ray-auth-token --from-file=auth_token=" in text
    assert not re.search(r"(?m)^kind:\s*Secret", text)


@pytest.mark.parametrize("name", list(MANIFESTS))
def test_kuberay_dashboard_is_not_exposed_outside_the_cluster(name: str) -> None:
    document = _manifest(name)
    head = _cluster_spec(document)["headGroupSpec"]
    assert head["serviceType"] == "ClusterIP"
    assert not head.get("enableIngress", False)
    assert "dashboard-host" not in head["rayStartParams"]
    text = (CLUSTER / "kuberay" / f"{name}.yaml").read_text()
    assert "0.0.0.0" not in text and "LoadBalancer" not in text and "NodePort" not in text
    assert "kubectl port-forward" in text


def test_rayjob_runs_tunefleet_on_the_mounted_spec_with_shared_storage() -> None:
    from tunefleet.experiments.arguments import parser

    document = _manifest("rayjob")
    spec = document["spec"]
    args = parser().parse_args(shlex.split(spec["entrypoint"])[1:])
    assert shlex.split(spec["entrypoint"])[0] == "tunefleet"
    assert (args.command, args.address) == ("run", "auto")
    assert args.storage.startswith("s3://")
    # The spec file lives on a ConfigMap volume mounted into the head, where the driver runs.
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    volumes = {v["name"]: v for v in head["volumes"]}
    mounts = [m for c in head["containers"] for m in c.get("volumeMounts", [])]
    (mount,) = [m for m in mounts if args.spec.startswith(m["mountPath"].rstrip("/") + "/")]
    assert "configMap" in volumes[mount["name"]]
    # tunefleet reaches the driver and the trials through the job's runtime environment.
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    packages = runtime_env["pip"]
    assert any(p.startswith("tunefleet") for p in packages)
    (torch_pin,) = _pins(packages, "torch")
    assert torch_pin in _pyproject_requirement("torch").specifier
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] > 0
