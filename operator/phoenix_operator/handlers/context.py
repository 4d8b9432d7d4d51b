"""What every handler shares, carried in kopf's memo."""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass, field
from typing import Any

from phoenix_operator.controllers import experiment as experiment_controller
from phoenix_operator.handlers import workqueue
from phoenix_operator.runtime import base as runtime_base


@dataclass
class Context:
    store: runtime_base.Store
    runtime: runtime_base.Runtime
    experiments: experiment_controller.Settings
    # pipelines to render, apply and report, the tasks working through them and their threads
    deploys: workqueue.WorkQueue
    deploy_workers: list[asyncio.Task[None]] = field(default_factory=list)
    deploy_threads: concurrent.futures.ThreadPoolExecutor | None = None
    memory: experiment_controller.Memory = field(default_factory=experiment_controller.Memory)
    phases: dict[str, str] = field(default_factory=dict)


def context(memo: Any) -> Context:
    found: Context = memo["context"]
    return found
