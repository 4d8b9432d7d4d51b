"""The plugin's access to a cluster: the user's kubeconfig, and errors as one line."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from phoenix_operator import GROUP, VERSION
from phoenix_operator.cli import output

if TYPE_CHECKING:
    from kubernetes import client as k8s

# The Kubernetes client loads in the functions that talk to a cluster, so that
# every other command starts without it.

EXPERIMENTS = "phoenixexperiments"
PIPELINES = "phoenixprocesspipelines"
REQUEST_TIMEOUT_SECONDS = 15

ContextOption = typer.Option("--context", help="The kubeconfig context to use (default: the current one).")
NamespaceOption = typer.Option("--namespace", "-n", help="Namespace (default: the context's namespace).")


@dataclass(frozen=True)
class Cluster:
    api: k8s.CustomObjectsApi
    namespace: str
    server: str

    def call(self, what: str, request: Callable[[], Any]) -> Any:
        """Run one API request; a failure ends the command with one clear line."""
        import urllib3
        from kubernetes import client as k8s

        try:
            return request()
        except k8s.ApiException as error:
            if error.status == 404:
                output.fail(f"error: {what} not found in namespace {self.namespace}")
            if error.status in (401, 403):
                output.fail(f"error: forbidden: cannot {what}: {_reason(error)}")
            output.fail(f"error: {what}: {error.status} {_reason(error)}")
        except urllib3.exceptions.HTTPError as error:
            output.fail(f"error: no cluster: cannot reach {self.server}: {type(error).__name__}")

    def experiment(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.call(
            f"get phoenixexperiment {name}",
            lambda: self.api.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, EXPERIMENTS, name, _request_timeout=REQUEST_TIMEOUT_SECONDS
            ),
        )
        return found

    def experiments(self, all_namespaces: bool) -> list[dict[str, Any]]:
        if all_namespaces:
            listed = self.call(
                "list phoenixexperiments",
                lambda: self.api.list_cluster_custom_object(
                    GROUP, VERSION, EXPERIMENTS, _request_timeout=REQUEST_TIMEOUT_SECONDS
                ),
            )
        else:
            listed = self.call(
                "list phoenixexperiments",
                lambda: self.api.list_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, EXPERIMENTS, _request_timeout=REQUEST_TIMEOUT_SECONDS
                ),
            )
        items: list[dict[str, Any]] = listed["items"]
        return items

    def watch_experiment(self, name: str, timeout_seconds: int) -> Iterator[dict[str, Any]]:
        """The experiment now, then each change until the timeout."""
        from kubernetes import watch

        stream = watch.Watch()  # type: ignore[no-untyped-call]
        events = stream.stream(  # type: ignore[no-untyped-call]
            self.api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            EXPERIMENTS,
            field_selector=f"metadata.name={name}",
            timeout_seconds=timeout_seconds,
        )
        while True:
            event = self.call(f"watch phoenixexperiment {name}", lambda: next(events, None))
            if event is None:
                return
            if event["type"] in ("ADDED", "MODIFIED"):
                yield event["object"]

    def pipeline(self, name: str) -> dict[str, Any] | None:
        listed = self.call(
            "list phoenixprocesspipelines",
            lambda: self.api.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PIPELINES, _request_timeout=REQUEST_TIMEOUT_SECONDS
            ),
        )
        return next((p for p in listed["items"] if p["metadata"]["name"] == name), None)

    def create(self, plural: str, body: dict[str, Any]) -> None:
        self.call(
            f"create {plural.removesuffix('s')} {body['metadata']['name']}",
            lambda: self.api.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, body, _request_timeout=REQUEST_TIMEOUT_SECONDS
            ),
        )

    def patch(self, plural: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        patched: dict[str, Any] = self.call(
            f"patch {plural.removesuffix('s')} {name}",
            lambda: self.api.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name, body, _request_timeout=REQUEST_TIMEOUT_SECONDS
            ),
        )
        return patched

    def patch_status(self, plural: str, name: str, status: dict[str, Any]) -> None:
        self.call(
            f"patch the status of {plural.removesuffix('s')} {name}",
            lambda: self.api.patch_namespaced_custom_object_status(
                GROUP, VERSION, self.namespace, plural, name, {"status": status},
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            ),
        )  # fmt: skip

    def delete(self, plural: str, name: str) -> None:
        self.call(
            f"delete {plural.removesuffix('s')} {name}",
            lambda: self.api.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name, _request_timeout=REQUEST_TIMEOUT_SECONDS
            ),
        )


def _reason(error: k8s.ApiException) -> str:
    try:
        message: str = json.loads(error.body or "{}").get("message") or error.reason or ""
    except ValueError:
        message = str(error.reason or "")
    return message


def connect(context: str | None, namespace: str | None) -> Cluster:
    """The cluster and namespace of the user's kubeconfig, as kubectl would choose them."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    # read at each call: the client's own default is fixed when it is imported
    kubeconfig = os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
    try:
        contexts, current = k8s_config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        chosen = next((c for c in contexts if c["name"] == context), None) if context else current
        if chosen is None:
            output.fail(f"error: context {context!r} is not in the kubeconfig")
        configuration = k8s.Configuration()
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    except (k8s_config.ConfigException, OSError) as error:
        output.fail(f"error: no cluster: {error}", "set KUBECONFIG or use --context")
    configuration.retries = 1
    api = k8s.CustomObjectsApi(k8s.ApiClient(configuration))
    default = chosen.get("context", {}).get("namespace") or "default"
    return Cluster(api, namespace or default, str(configuration.host))
