"""The one factory of measurement providers."""

from __future__ import annotations

from collections.abc import Callable

from phoenix_operator.measure import base, prometheus
from phoenix_operator.models import common, experiment

# Reads a Secret key; raises when the Secret cannot be read.
SecretReader = Callable[[common.SecretKeyRef], str]


class Unavailable(Exception):
    """No provider can be built: none is configured, or its credentials are unusable."""


def provider_for(
    settings: experiment.AnalysisSpec,
    secrets: SecretReader,
    default_url: str | None,
    history: prometheus.History | None = None,
) -> base.Provider:
    """The provider an experiment's analysis names, else the driver's default Prometheus.

    `history` holds what the experiment's earlier measurements fetched.
    """
    return prometheus.Provider(client_for(settings, secrets, default_url), history)


def client_for(settings: experiment.AnalysisSpec, secrets: SecretReader, default_url: str | None) -> prometheus.Client:
    """The Prometheus an experiment's analysis names, with its token, else the driver's default one."""
    source = settings.prometheus
    if source is None:
        if default_url is None:
            raise Unavailable(
                "no Prometheus: set spec.analysis.prometheus.url or start the operator with --prometheus-url"
            )
        return prometheus.Client(default_url)
    token = secrets(source.secret_ref).strip() if source.secret_ref is not None else None
    basic_auth = None
    if source.basic_auth is not None:
        basic_auth = (secrets(source.basic_auth.username).strip(), secrets(source.basic_auth.password).strip())
    tls = None
    if source.tls is not None:
        ca, cert, key = (
            secrets(ref) if ref is not None else None for ref in (source.tls.ca, source.tls.cert, source.tls.key)
        )
        try:
            tls = prometheus.tls_context(ca, cert, key)
        except ValueError as error:
            raise Unavailable(f"spec.analysis.prometheus.{error}") from None
    return prometheus.Client(source.url, bearer_token=token, basic_auth=basic_auth, tls=tls)
