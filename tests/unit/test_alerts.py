"""Every alert of the prometheus component, evaluated by `promtool test rules`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from phoenix_operator import binaries

REPO = Path(__file__).resolve().parents[2]
RULE = REPO / "kustomize" / "components" / "prometheus" / "prometheusrule.yaml"
TESTS = REPO / "tests" / "alerts" / "prometheusrule.test.yaml"


def test_every_alert_fires_when_it_should_and_only_then(tmp_path: Path) -> None:
    try:
        promtool = binaries.require(binaries.PROMTOOL)
    except binaries.BinaryNotFound as error:
        pytest.fail(str(error), pytrace=False)
    groups = yaml.safe_load(RULE.read_text())["spec"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(groups))
    shutil.copy(TESTS, tmp_path / TESTS.name)
    tested = subprocess.run(
        [str(promtool), "test", "rules", TESTS.name], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {rule["alert"] for group in groups["groups"] for rule in group["rules"] if "alert" in rule}
    covered = {
        test["alertname"] for case in yaml.safe_load(TESTS.read_text())["tests"] for test in case["alert_rule_test"]
    }
    assert covered == alerts, f"alerts without a test: {sorted(alerts - covered)}"
