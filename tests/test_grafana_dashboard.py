"""The Grafana dashboard queries only metrics our exporters really serve, with their real labels."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "docs" / "grafana" / "truelabel-db.json"
METRIC = re.compile(r"\btruelabel_[a-z_]+")
PROMQL_WORDS = {"rate", "increase", "max", "min", "sum", "topk"}


def _served() -> set[str]:
    """Every metric name the package exports (counters also as ``_total``, as exposition names them)."""
    names: set[str] = set()
    for path in (ROOT / "src" / "truelabel_db").rglob("*.py"):
        text = path.read_text("utf-8")
        names |= set(re.findall(r'"(truelabel_[a-z_]+)"', text))
        names |= {f"truelabel_follow_{n}" for n in re.findall(r'\("([a-z_]+)", "', text)} if "follow" in path.parts else set()
    return names | {n + "_total" for n in names}


def _expressions() -> list[str]:
    doc = json.loads(DASHBOARD.read_text("utf-8"))
    return [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]


def test_the_dashboard_is_valid_json_with_a_datasource_variable() -> None:
    doc = json.loads(DASHBOARD.read_text("utf-8"))
    assert doc["uid"] == "truelabel-db" and doc["templating"]["list"][0]["type"] == "datasource"
    assert len(_expressions()) >= 20


def test_every_metric_the_dashboard_queries_is_served() -> None:
    served = _served()
    missing = sorted({m for e in _expressions() for m in METRIC.findall(e)} - served)
    assert not missing, f"not exported by any collector: {missing}"


def test_label_filters_name_labels_the_exporters_set() -> None:
    for expr in _expressions():
        for label in re.findall(r"\{([a-z_]+)(?:!?=)", expr):
            assert label in {"layer", "scope"}, expr
