"""The chart's NOTES.txt says what the release watches: the enabled sources, not always "Ingresses".

helm template does not render NOTES.txt, so a copy of the chart renders it into a ConfigMap through `tpl`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.chart.conftest import CHART, KUBE_VERSION, helm, values_file

WRAPPER = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: rendered-notes
data:
  notes: |
{{ tpl (.Files.Get "NOTES-copy.txt") . | indent 4 }}
"""


def notes(tmp_path: Path, values: dict) -> str:
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    shutil.copy(CHART / "templates" / "NOTES.txt", chart / "NOTES-copy.txt")
    (chart / "templates" / "rendered-notes.yaml").write_text(WRAPPER)
    proc = helm(
        "template", "hosts", str(chart), "--kube-version", KUBE_VERSION,
        "-f", str(values_file(tmp_path, values)), "--show-only", "templates/rendered-notes.yaml",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return " ".join(yaml.safe_load(proc.stdout)["data"]["notes"].split())


@pytest.mark.parametrize(
    ("sources", "said"),
    [
        (["ingress"], "in sync with the ingress objects of the namespaces: a."),
        (["service", "gateway-httproute"], "in sync with the service, gateway-httproute objects of"),
    ],
)
def test_the_notes_name_the_enabled_sources(tmp_path, sources, said):
    text = notes(tmp_path, {"namespaces": ["a"], "sources": sources})
    assert said in text, text
    if "ingress" not in sources:
        assert "Ingresses" not in text
