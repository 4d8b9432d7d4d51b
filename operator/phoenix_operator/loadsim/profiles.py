"""What each LoadSim profile looks like: executables, command lines, resource use.

The shapes follow what the hostmetrics process scraper sees on real fleets: a
few executables account for most processes (a Zipf-like long tail) and CPU
use is heavy-tailed (log-normal), so a handful of processes dominate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

EXECUTABLES = (
    "java",
    "python3",
    "node",
    "postgres",
    "nginx",
    "sshd",
    "systemd",
    "bash",
    "containerd-shim",
    "kubelet",
    "dockerd",
    "redis-server",
    "mysqld",
    "php-fpm",
    "ruby",
    "envoy",
    "prometheus",
    "otelcol",
    "cron",
    "rsyslogd",
    "chronyd",
    "sleep",
    "git",
    "make",
    "gcc",
    "go",
    "dotnet",
    "erl",
    "beam.smp",
    "memcached",
    "haproxy",
    "consul",
    "vault",
    "etcd",
    "coredns",
    "fluent-bit",
    "vector",
    "telegraf",
    "sidekiq",
    "gunicorn",
)
OWNERS = ("root", "www-data", "postgres", "app", "nobody")


@dataclass(frozen=True)
class Profile:
    executables: int
    zipf_exponent: float
    unique_command_lines: bool
    default_churn_fraction_per_minute: float
    cpu_log_sigma: float
    # Processes of one executable added per minute, as a share of processes_per_host; they never exit
    growth_fraction_per_minute: float = 0.0
    growth_executable: str = "php-fpm"


REALISTIC = Profile(
    executables=30,
    zipf_exponent=1.3,
    unique_command_lines=False,
    default_churn_fraction_per_minute=0.0,
    cpu_log_sigma=1.5,
)
PROFILES = {
    "realistic": REALISTIC,
    "high-cardinality": Profile(
        executables=len(EXECUTABLES),
        zipf_exponent=0.6,
        unique_command_lines=True,
        default_churn_fraction_per_minute=0.0,
        cpu_log_sigma=1.0,
    ),
    "process-churn": replace(REALISTIC, default_churn_fraction_per_minute=0.05),
    # A worker pool scaling up: a pipeline that keeps its executable's per-process detail grows with it.
    "worker-growth": replace(REALISTIC, growth_fraction_per_minute=0.25),
}
