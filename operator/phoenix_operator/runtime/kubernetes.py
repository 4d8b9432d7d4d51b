"""The Kubernetes runtime: children are applied with server-side apply.

Server-side apply makes every write idempotent: re-applying after a restart or
a conflicting edit converges on the same objects instead of duplicating them,
and fields other managers own survive: a user's label, or an HPA's replicas
(an autoscaled pipeline's apply leaves `spec.replicas` out).
Children carry owner references, so the API server's garbage collector removes
them with their owner; the runtime deletes only what a transition asks for.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import dynamic
from kubernetes.dynamic import exceptions as dynamic_errors

from phoenix_operator.models import kinds
from phoenix_operator.reconcile import loadsim as reconcile_loadsim
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import base

FIELD_MANAGER = "phoenix-operator"
PIPELINE_KIND = "PhoenixProcessPipeline"
# What the runtime applies and reads, as (apiVersion, kind).
CHILD_KINDS = (
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "DaemonSet"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("batch/v1", "Job"),
    ("v1", "Pod"),  # read only: a finished load Job's pod holds the run's summary
)


# Kept-alive connections to the API server. The client's default, five per CPU,
# is fewer than the operator's deploy threads and handlers: a thread that finds
# none free opens a TLS connection and throws it away after one request.
CONNECTIONS = 32


class NoCredentials(Exception):
    """Neither an in-cluster service account nor a kubeconfig was found."""


def api_client() -> k8s.ApiClient:
    """A client with the pod's service account inside a cluster, else the user's kubeconfig."""
    try:
        k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        try:
            k8s_config.load_kube_config()  # type: ignore[no-untyped-call]
        except (k8s_config.ConfigException, OSError) as error:
            raise NoCredentials(f"no Kubernetes credentials: {error}") from None
    configuration = k8s.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = CONNECTIONS
    return k8s.ApiClient(configuration)


@contextlib.contextmanager
def _store_errors(what: str) -> Iterator[None]:
    """The client's errors as the Store's, so drivers know nothing of this client."""
    try:
        yield
    except k8s.ApiException as error:
        raise base.StoreError(f"{what}: {error.status} {error.reason}") from None
    except urllib3.exceptions.HTTPError as error:
        raise base.StoreError(f"{what}: the API server is unreachable: {type(error).__name__}") from None


def _plain_json(_client: object, parsed: dict[str, Any]) -> dict[str, Any]:
    """The response as parsed JSON: building the client's ResourceInstance is slow."""
    return parsed


class Api:
    """Thin typed access to any kind through the dynamic client."""

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self._api_client = api_client
        self._dynamic = dynamic.DynamicClient(api_client)  # type: ignore[no-untyped-call]
        # built now: the client imports its large API module on first use
        self._core = k8s.CoreV1Api(api_client)

    def _resource(self, api_version: str, kind: str) -> Any:
        return self._dynamic.resources.get(api_version=api_version, kind=kind)

    def discover(self, wanted: Sequence[tuple[str, str]]) -> None:
        """Look the kinds up in API discovery now; the client caches what it finds."""
        for api_version, kind in wanted:
            self._resource(api_version, kind)

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        with _store_errors(f"apply {manifest['kind']} {manifest['metadata']['name']}"):
            resource = self._resource(manifest["apiVersion"], manifest["kind"])
            applied = resource.server_side_apply(
                body=manifest,
                name=manifest["metadata"]["name"],
                namespace=manifest["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
                serializer=_plain_json,
            )
        result: dict[str, Any] = applied
        return result

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with _store_errors(f"get {kind} {name}"):
            try:
                found = self._resource(api_version, kind).get(name=name, namespace=namespace)
            except dynamic_errors.NotFoundError:
                return None
        result: dict[str, Any] = found.to_dict()
        return result

    def list_objects(self, api_version: str, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        with _store_errors(f"list {kind} {label_selector}"):
            found = self._resource(api_version, kind).get(namespace=namespace, label_selector=label_selector)
        items: list[dict[str, Any]] = found.to_dict().get("items") or []
        return items

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        with _store_errors(f"delete {kind} {name}"), contextlib.suppress(dynamic_errors.NotFoundError):
            self._resource(api_version, kind).delete(
                name=name, namespace=namespace, body={"propagationPolicy": "Background"}
            )

    def patch_spec(self, api_version: str, kind: str, namespace: str, name: str, spec: dict[str, Any]) -> None:
        with _store_errors(f"patch {kind} {name}"):
            self._resource(api_version, kind).patch(
                name=name,
                namespace=namespace,
                body={"spec": spec},
                content_type="application/merge-patch+json",
            )

    def annotate(
        self, api_version: str, kind: str, namespace: str, name: str, annotations: dict[str, str | None]
    ) -> None:
        # a merge patch touches only these keys: no field manager takes the object's other annotations
        with _store_errors(f"annotate {kind} {name}"), contextlib.suppress(dynamic_errors.NotFoundError):
            self._resource(api_version, kind).patch(
                name=name,
                namespace=namespace,
                body={"metadata": {"annotations": annotations}},
                content_type="application/merge-patch+json",
            )

    def patch_status_if_unchanged(
        self, api_version: str, kind: str, metadata: dict[str, Any], status: dict[str, Any]
    ) -> bool:
        """Merge-patch the status of the object as it was read; False if it has changed since."""
        with _store_errors(f"patch the status of {kind} {metadata['name']}"):
            try:
                self._resource(api_version, kind).status.patch(
                    body={"metadata": {"resourceVersion": metadata["resourceVersion"]}, "status": status},
                    name=metadata["name"],
                    namespace=metadata.get("namespace"),
                    content_type="application/merge-patch+json",
                )
            except dynamic_errors.ConflictError:
                return False
        return True

    def post_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """An Event about `obj`, as `kubectl describe` lists them."""
        metadata = obj["metadata"]
        now = datetime.now(UTC).isoformat()
        involved = {k: metadata[k] for k in ("name", "namespace", "uid")}
        # a plain mapping: the client serializes it as it would a CoreV1Event
        event: Any = {
            "metadata": {"generateName": f"{metadata['name']}."},
            "involvedObject": {"apiVersion": obj["apiVersion"], "kind": obj["kind"], **involved},
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": FIELD_MANAGER},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        with _store_errors(f"post an event about {metadata['name']}"):
            self._core.create_namespaced_event(metadata["namespace"], event, _preload_content=False)

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        try:
            secret = self._core.read_namespaced_secret(name, namespace)
        except k8s.ApiException as error:
            hint = " (grant the operator get on it: docs/prometheus-token-access.yaml)" if error.status == 403 else ""
            raise base.SecretUnreadable(f"cannot read Secret {namespace}/{name}: {error.reason}{hint}") from None
        data = secret.data or {}
        if key not in data:
            raise base.SecretUnreadable(f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data[key]).decode()

    def may_read_metrics(self, token: str) -> bool | None:
        """Whether the bearer of `token` may GET /metrics: None when the token authenticates no one.

        The API server decides both, as for any request to it: a TokenReview
        says who holds the token, a SubjectAccessReview whether RBAC lets that
        user get the non-resource URL /metrics (the metrics-reader role).
        """
        with _store_errors("review a metrics request's token"):
            review = self._dynamic_create("authentication.k8s.io/v1", "TokenReview", {"spec": {"token": token}})
            status = review.get("status") or {}
            if not status.get("authenticated"):
                return None
            user = status.get("user") or {}
            spec = {
                "user": user.get("username"),
                "uid": user.get("uid"),
                "groups": user.get("groups"),
                "extra": user.get("extra"),
                "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
            }
            access = self._dynamic_create("authorization.k8s.io/v1", "SubjectAccessReview", {"spec": spec})
        return bool((access.get("status") or {}).get("allowed"))

    def _dynamic_create(self, api_version: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self._resource(api_version, kind).create(
            body={"apiVersion": api_version, "kind": kind, **body}, serializer=_plain_json
        )
        return created


# The image a LoadSim Job runs when the operator cannot read its own: outside a pod, as in development.
DEFAULT_IMAGE = "phoenix-operator:0.1.0"
OPERATOR_CONTAINER = "operator"


def own_image(api: Api, environ: Mapping[str, str]) -> str:
    """The operator container's image, read from its own pod, whose name and namespace the downward API
    gives it; DEFAULT_IMAGE when it runs outside a pod. A LoadSim Job runs `phoenix loadsim`, which that
    image holds, so an `images:` override in kustomize moves both."""
    name, namespace = environ.get("POD_NAME"), environ.get("POD_NAMESPACE")
    if not name or not namespace:
        return DEFAULT_IMAGE
    pod = api.get("v1", "Pod", namespace, name)
    if pod is None:
        raise base.StoreError(f"the operator's own pod {namespace}/{name} (POD_NAME, POD_NAMESPACE) does not exist")
    containers = pod["spec"]["containers"]
    chosen = next((c for c in containers if c["name"] == OPERATOR_CONTAINER), containers[0])
    image: str = chosen["image"]
    return image


class KubernetesRuntime:
    """Collectors as Deployments or DaemonSets, loads as Jobs.

    Workloads are watched, not polled: the operator passes each event of a
    workload or of its Service's EndpointSlices to record_workload, and
    readiness is read from the newest ones. A collector counts as ready once
    its workload says so and the Service routes to it: load sent before that
    would be lost. Load Jobs reach record_job the same way.
    """

    def __init__(self, api: Api, image: str) -> None:
        self.api = api
        self.image = image
        self._workloads: dict[tuple[str, str], dict[str, Any]] = {}
        # the watch's events arrive on the event loop, the applies' answers in the deploy threads
        self._workloads_lock = threading.Lock()
        # per pipeline, the ready endpoints of each of its Service's EndpointSlices
        self._routed: dict[tuple[str, str], dict[str, int]] = {}
        # load Jobs by namespace and name, from their watch events
        self._jobs: dict[tuple[str, str], dict[str, Any]] = {}

    def record_workload(self, event_type: str, workload: dict[str, Any]) -> str | None:
        """Remember a collector workload's, or EndpointSlice's, newest state.

        Returns the owning pipeline's name when its readiness changed: the
        other events (a first sight with nothing ready, a status update that
        moves no count) change nothing the pipeline's status says.
        """
        if workload.get("kind") == "EndpointSlice":
            return self._record_endpoint_slice(event_type, workload)
        owner = next(
            (o["name"] for o in workload["metadata"].get("ownerReferences") or [] if o["kind"] == PIPELINE_KIND),
            None,
        )
        if owner is None:
            return None
        key = (workload["metadata"]["namespace"], owner)
        with self._workloads_lock:
            previous = self._workloads.pop(key, None)
            if event_type == "DELETED":
                return None
            self._workloads[key] = workload
        before = _readiness(previous) if previous else (0, 0, None)
        after = _readiness(workload)
        return owner if (before[1], before[2]) != (after[1], after[2]) else None

    def _record_endpoint_slice(self, event_type: str, endpoint_slice: dict[str, Any]) -> str | None:
        metadata = endpoint_slice["metadata"]
        owner = (metadata.get("labels") or {}).get(reconcile_pipeline.PIPELINE_LABEL)
        if owner is None:
            return None
        slices = self._routed.setdefault((metadata["namespace"], owner), {})
        before = sum(slices.values())
        if event_type == "DELETED":
            slices.pop(metadata["name"], None)
        else:
            slices[metadata["name"]] = _ready_endpoints(endpoint_slice)
        return owner if sum(slices.values()) != before else None

    def apply_pipeline(
        self, obj: kinds.PhoenixProcessPipeline, rendered: render_pipeline.RenderedConfig
    ) -> reconcile_pipeline.Observed:
        workload: dict[str, Any] = {}
        for manifest in reconcile_pipeline.manifests(obj, rendered):
            applied = self.api.apply(manifest)
            if manifest["kind"] in ("Deployment", "DaemonSet"):
                workload = applied
        self._remember_applied((obj.metadata.namespace or "default", obj.metadata.name), workload)
        return self._pipeline_observed(obj, workload)

    def _remember_applied(self, key: tuple[str, str], workload: dict[str, Any]) -> None:
        """The applied workload's answer, as its watch event will bring it, unless the watch brought it already.

        So a pipeline observed before that event arrives (a deploy whose status write lost to another write
        and runs again, observing only) reads the children it applied, not none; and the event, which then
        changes no readiness, queues no deploy.
        """
        with self._workloads_lock:
            known = self._workloads.get(key)
            if known is None or known["kind"] != workload["kind"] or _generation(known) < _generation(workload):
                self._workloads[key] = workload

    def observe_pipeline(self, obj: kinds.PhoenixProcessPipeline) -> reconcile_pipeline.Observed | None:
        workload = self._workloads.get((obj.metadata.namespace or "default", obj.metadata.name))
        return None if workload is None else self._pipeline_observed(obj, workload)

    def _pipeline_observed(
        self, obj: kinds.PhoenixProcessPipeline, workload: dict[str, Any]
    ) -> reconcile_pipeline.Observed:
        desired, ready, config_hash = _readiness(workload)
        routed = sum(self._routed.get((obj.metadata.namespace or "default", obj.metadata.name), {}).values())
        endpoints = reconcile_pipeline.cluster_endpoints(obj)
        return reconcile_pipeline.Observed(desired, min(ready, routed), endpoints, config_hash)

    def record_job(self, event_type: str, job: dict[str, Any]) -> None:
        key = (job["metadata"]["namespace"], job["metadata"]["name"])
        if event_type == "DELETED":
            self._jobs.pop(key, None)
        else:
            self._jobs[key] = job

    def observe_load(self, obj: kinds.LoadSim) -> reconcile_loadsim.Observed | None:
        key = (obj.metadata.namespace or "default", reconcile_loadsim.job_name(obj.metadata.name))
        # read only until the watch has listed it, as when the operator has just started
        job = self._jobs.get(key) or self.api.get("batch/v1", "Job", *key)
        return None if job is None else self._load_observed(job)

    def apply_load(self, obj: kinds.LoadSim, targets: list[str]) -> reconcile_loadsim.Observed:
        # a Job's pod template is immutable, so it is created once and then only observed
        return self._load_observed(self.api.apply(reconcile_loadsim.job(obj, targets, self.image)))

    def _load_observed(self, job: dict[str, Any]) -> reconcile_loadsim.Observed:
        observed = _job_observed(job)
        if not (observed.succeeded or observed.failed):
            return observed
        # read once: the LoadSim is not stepped again after it ends
        pods = self.api.list_objects("v1", "Pod", job["metadata"]["namespace"], f"job-name={job['metadata']['name']}")
        return dataclasses.replace(observed, delivery=_delivery(pods))


def _generation(workload: dict[str, Any]) -> int:
    return int(workload["metadata"].get("generation") or 0)


def _readiness(workload: dict[str, Any]) -> tuple[int, int, str | None]:
    """Desired and ready collectors of a Deployment or DaemonSet, and the config they run."""
    status = workload.get("status") or {}
    template = ((workload.get("spec") or {}).get("template") or {}).get("metadata") or {}
    config_hash = (template.get("annotations") or {}).get(reconcile_pipeline.CONFIG_HASH_ANNOTATION)
    if int(status.get("observedGeneration") or 0) < _generation(workload):
        # the controller has not seen this spec yet: the counts below are the previous rollout's
        config_hash = None
    if workload["kind"] == "Deployment":
        desired = int((workload.get("spec") or {}).get("replicas") or 0)
        ready, updated = int(status.get("readyReplicas") or 0), int(status.get("updatedReplicas") or 0)
    else:
        desired = int(status.get("desiredNumberScheduled") or 0)
        ready, updated = int(status.get("numberReady") or 0), int(status.get("updatedNumberScheduled") or 0)
    # pods of the previous config still count as ready until the rollout ends
    return desired, min(ready, updated), config_hash


def _delivery(pods: list[dict[str, Any]]) -> reconcile_loadsim.Delivery | None:
    """The summary the load container left as its termination message, from its last pod to end."""
    ended = []
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated") or {}
            if terminated.get("message"):
                ended.append((str(terminated.get("finishedAt") or ""), str(terminated["message"])))
    return reconcile_loadsim.delivery(max(ended)[1]) if ended else None


def _ready_endpoints(endpoint_slice: dict[str, Any]) -> int:
    """Endpoints the Service routes to; an unset `ready` means ready, as the API defines it."""
    endpoints = endpoint_slice.get("endpoints") or []
    return sum(1 for e in endpoints if (e.get("conditions") or {}).get("ready") is not False)


def _job_observed(job: dict[str, Any]) -> reconcile_loadsim.Observed:
    status = job.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    failed = "Failed" in conditions
    return reconcile_loadsim.Observed(
        active=int(status.get("active") or 0) > 0,
        succeeded="Complete" in conditions,
        failed=failed,
        started_at=status.get("startTime"),
        completed_at=status.get("completionTime"),
        message=str(conditions["Failed"].get("message") or "") if failed else "",
    )
