"""Where pipelines and loads run: Kubernetes objects, or local processes on loopback."""
