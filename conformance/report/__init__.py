"""Capability reports of c10d-conformance: the JSON contract, its writer, HTML pages, summaries, expectations.

What the pytest plugin calls::

    from conformance.report import RunReport, Expectations, terminal_table

    exp = Expectations.load(path) if path else None           # --expect FILE (ValueError: one line)
    rep = RunReport(report_dir, {"backend": ..., "device": ..., "world_size": ..., ...}, expectations=exp)
    rep.set_capabilities(advertised, observed)
    rep.add({"id": ..., "collective": ..., "status": ..., ...})  # per case; flushes itself (<= every 0.5 s)
    doc = rep.close(complete=True)  # or close(complete=False, interrupted=True)
    print(terminal_table([doc]))
    for line in exp.stale_messages(): warn(line)

Heavy imports (jinja2, jsonschema) happen only when a page is rendered or a document fully validated.
"""

from __future__ import annotations

from .expectations import Expectations
from .model import (
    CONFORMANT,
    NONCONFORMANT,
    SCHEMA_VERSION,
    STATUSES,
    NotAReport,
    ReportError,
    load_report,
    run_stem,
    summarize_results,
    verdict_text,
)
from .schema import validate
from .summary import markdown_summary, terminal_table
from .writer import RunReport, default_run_info

__all__ = [
    "CONFORMANT",
    "NONCONFORMANT",
    "SCHEMA_VERSION",
    "STATUSES",
    "Expectations",
    "NotAReport",
    "ReportError",
    "RunReport",
    "default_run_info",
    "load_report",
    "markdown_summary",
    "run_stem",
    "summarize_results",
    "terminal_table",
    "validate",
    "verdict_text",
]
