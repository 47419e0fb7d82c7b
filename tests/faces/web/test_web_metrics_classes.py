"""`/metrics`' per-class lines: runs, failures and runtime quantiles of each job class on each
queue over the last hour, from the recorded history, with label values escaped."""

from __future__ import annotations

import re

from qadmin.insight import HistorySample
from qadmin.job import utcnow
from qadmin.ops import Ops
from tests.faces.web.support import Web


def test_metrics_list_each_class_of_each_queue(web: Web, ops: Ops) -> None:
    minute = utcnow().replace(second=0, microsecond=0)
    odd = HistorySample(minute, 'we"ird\nq', "Odd\\Class", processed=3, failed=1)
    for _ in range(4):
        odd.add_run(0.25)
    ops.backend.record_history([odd])
    text = web.client.get("/metrics").get_data(as_text=True)
    assert "# TYPE qadmin_class_runs gauge" in text
    runs = re.search(
        r'^qadmin_class_runs\{backend="[^"]*",queue="billing",class="qadmin.examples.ChargeCard"\} (\d+)$', text, re.M
    )
    assert runs and int(runs.group(1)) > 0  # the demo's synthetic hour
    assert re.search(
        r'^qadmin_class_runtime_seconds\{backend="[^"]*",queue="billing",class="qadmin.examples.ChargeCard",quantile="0.95"\} [0-9.]+$',
        text,
        re.M,
    )
    escaped = 'queue="we\\"ird\\nq",class="Odd\\\\Class"'
    lines = [line for line in text.splitlines() if escaped in line]
    assert any(line.startswith("qadmin_class_runs{") and line.endswith(" 4") for line in lines), lines
    assert any(line.startswith("qadmin_class_failures{") and line.endswith(" 1") for line in lines)
    assert any('quantile="0.5"' in line for line in lines)
