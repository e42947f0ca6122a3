"""What the rendered overlays promise beyond schema validity: hardened, probed, fenced, pinned, scalable."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.deploy.tools import K8S, OVERLAYS

pytestmark = pytest.mark.deploy

Doc = dict[str, Any]
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
# Batch workers serve nothing and expose no endpoint: they carry no probes, and say so in a checkov skip.
UNPROBED = {"recalibrate", "judge"}


def workloads(docs: list[Doc]) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] in WORKLOAD_KINDS]


def containers(workload: Doc) -> list[Doc]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def of_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@pytest.fixture(params=OVERLAYS)
def docs(request: pytest.FixtureRequest, manifests: dict[str, list[Doc]]) -> list[Doc]:
    return manifests[request.param]


def test_every_container_has_requests_and_limits(docs: list[Doc]) -> None:
    for workload in workloads(docs):
        for container in containers(workload):
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), (workload["metadata"]["name"], bound)


def test_every_serving_container_has_readiness_and_liveness_probes(docs: list[Doc]) -> None:
    for workload in workloads(docs):
        name = workload["metadata"]["name"]
        for container in workload["spec"]["template"]["spec"]["containers"]:
            if name in UNPROBED:
                assert "CKV_K8S_8=" in str(workload["metadata"].get("annotations")), name
                continue
            assert "readinessProbe" in container and "livenessProbe" in container, name


def test_every_container_runs_unprivileged_on_a_read_only_root(docs: list[Doc]) -> None:
    for workload in workloads(docs):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        for container in containers(workload):
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True and context["runAsUser"] >= 10000
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]


def test_every_workload_is_selected_by_its_own_network_policy(docs: list[Doc]) -> None:
    policies = of_kind(docs, "NetworkPolicy")
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for workload in workloads(docs):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        own = [name for name, policy in policies.items()
               if policy["spec"]["podSelector"] and labels_match(policy["spec"]["podSelector"]["matchLabels"], labels)]
        assert own, workload["metadata"]["name"]


def test_only_the_service_and_the_processes_that_need_them_reach_triton_and_redis(docs: list[Doc]) -> None:
    policies = of_kind(docs, "NetworkPolicy")

    def allowed(target: str, port: int) -> set[str]:
        return {peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                for rule in policies[target]["spec"]["ingress"] if {"port": port, "protocol": "TCP"} in rule["ports"]
                for peer in rule.get("from", []) if "podSelector" in peer}

    assert allowed("triton", 8001) == {"cloud-service", "judge"}
    assert allowed("redis", 6379) == {"cloud-service", "recalibrate", "judge", "backpressure"}
    edge = [rule for rule in policies["cloud-service"]["spec"]["ingress"] if "from" not in rule]
    assert edge == [{"ports": [{"port": 50051, "protocol": "TCP"}]}]  # the only port open to the outside


def test_images_are_pinned_to_a_version(docs: list[Doc]) -> None:
    for workload in workloads(docs):
        for container in containers(workload):
            image = container["image"]
            tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
            assert "@sha256:" in image or (tag and tag != "latest" and any(c.isdigit() for c in tag)), image


def test_every_multi_replica_or_stateful_workload_has_a_disruption_budget(docs: list[Doc]) -> None:
    budgets = of_kind(docs, "PodDisruptionBudget").values()
    for workload in workloads(docs):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(labels_match(b["spec"]["selector"]["matchLabels"], labels) for b in budgets), \
            workload["metadata"]["name"]


def test_the_service_is_ready_on_fleet_health_so_a_triton_outage_keeps_watches(manifests: dict[str, list[Doc]]) -> None:
    service = of_kind(manifests["cpu-dev"], "Deployment")["cloud-service"]
    (container,) = service["spec"]["template"]["spec"]["containers"]

    assert container["readinessProbe"]["grpc"] == {"port": 50051, "service": "confroute.v1.FleetService"}


def test_triton_probes_its_health_endpoints_and_exposes_metrics(docs: list[Doc]) -> None:
    triton = of_kind(docs, "Deployment")["triton"]
    (container,) = triton["spec"]["template"]["spec"]["containers"]

    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert {"name": "metrics", "containerPort": 8002, "protocol": "TCP"} in container["ports"]


def test_the_back_pressure_controller_is_a_singleton(docs: list[Doc]) -> None:
    controller = of_kind(docs, "Deployment")["backpressure"]

    assert controller["spec"]["replicas"] == 1
    assert controller["spec"]["strategy"] == {"type": "Recreate"}
    scaled = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in of_kind(docs, "HorizontalPodAutoscaler").values()}
    assert "backpressure" not in scaled


def test_redis_persists_with_aof_and_reads_its_users_from_the_secret(docs: list[Doc]) -> None:
    redis = of_kind(docs, "StatefulSet")["redis"]
    config = next(doc for doc in docs
                  if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("redis-config"))
    settings = dict(line.split(" ", 1) for line in config["data"]["redis.conf"].splitlines()
                    if line and not line.startswith("#"))
    mounts = {m["name"]: m["mountPath"] for m in redis["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in redis["spec"]["template"]["spec"]["volumes"]}

    assert settings["appendonly"] == "yes" and settings["appendfsync"] in ("everysec", "always")
    assert settings["dir"] == mounts["data"]
    assert settings["aclfile"] == mounts["acl"] + "/users.acl"
    assert volumes["acl"]["secret"]["secretName"] == "confroute-redis-acl"
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_each_hpa_scales_on_a_metric_the_adapter_exposes(docs: list[Doc]) -> None:
    adapter = yaml.safe_load((K8S / "monitoring" / "prometheus-adapter-values.yaml").read_text())
    exposed = {rule["name"]["as"] for rule in adapter["rules"]["custom"]}
    hpas = of_kind(docs, "HorizontalPodAutoscaler")

    names = {name: [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"]] for name, hpa in hpas.items()}

    assert names == {"cloud-service": ["confroute_escalations_inflight"], "triton": ["triton_queue_compute_ratio"]}
    assert {metric for metrics in names.values() for metric in metrics} <= exposed


def test_the_adapter_reads_the_recorded_triton_queue_to_compute_ratio(docs: list[Doc]) -> None:
    adapter = yaml.safe_load((K8S / "monitoring" / "prometheus-adapter-values.yaml").read_text())
    rules = {r["record"]: r["expr"] for doc in of_kind(docs, "PrometheusRule").values()
             for group in doc["spec"]["groups"] for r in group["rules"] if "record" in r}
    (triton_rule,) = [r for r in adapter["rules"]["custom"] if r["name"]["as"] == "triton_queue_compute_ratio"]

    series = triton_rule["seriesQuery"].split("{")[0].strip("'")
    assert series in rules
    assert "nv_inference_queue_duration_us" in rules[series]
    assert "nv_inference_compute_infer_duration_us" in rules[series]


def test_every_service_monitor_scrapes_a_named_port_of_a_selected_service(docs: list[Doc]) -> None:
    services = of_kind(docs, "Service").values()
    for monitor in of_kind(docs, "ServiceMonitor").values():
        selected = [s for s in services if labels_match(monitor["spec"]["selector"]["matchLabels"],
                                                        s["metadata"].get("labels", {}))]
        ports = {p["name"] for s in selected for p in s["spec"]["ports"]}
        assert selected and {e["port"] for e in monitor["spec"]["endpoints"]} <= ports, monitor["metadata"]["name"]


def test_gpu_prod_serves_the_vllm_model_repository_with_mtls_on_the_edge_port(manifests: dict[str, list[Doc]]) -> None:
    docs = manifests["gpu-prod"]
    triton = of_kind(docs, "Deployment")["triton"]["spec"]["template"]["spec"]
    service = of_kind(docs, "Deployment")["cloud-service"]["spec"]["template"]["spec"]["containers"][0]
    repository = next(v for v in triton["volumes"] if v["name"] == "model-repository")["configMap"]
    config = next(doc for doc in docs if doc["kind"] == "ConfigMap"
                  and doc["metadata"]["name"] == repository["name"])

    assert 'backend: "vllm"' in config["data"]["config.pbtxt"]
    assert {item["path"] for item in repository["items"]} == {"config.pbtxt", "1/model.json"}
    engine = json.loads(config["data"]["model.json"])
    gpus = int(triton["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
    assert engine["tensor_parallel_size"] == gpus  # vLLM shards the model over exactly the GPUs it is given
    assert engine["model"].startswith("/weights/")  # from the read-only volume, never downloaded at start
    assert {"CONFROUTE_CLOUD_TLS_CERT", "CONFROUTE_CLOUD_TLS_KEY", "CONFROUTE_CLOUD_TLS_CLIENT_CA"} <= {
        e["name"] for e in service["env"]}
