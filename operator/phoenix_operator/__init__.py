"""Phoenix: A/B tests of OpenTelemetry Collector pipelines, run by a Kubernetes operator."""

GROUP = "phoenix.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
