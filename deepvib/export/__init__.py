"""SavedModel export of trained runs for TF Serving (`bin/export`, docs/serving.md).

Modules: `options` (what to export, checked without TensorFlow), `layout` (the
`<name>/<version>/` directories, written atomically), `signatures` (the served functions),
`requests` and `warmup` (PredictRequests and the warmup file), `exporter` (all of it).

`export_run` and `ExportResult` are imported lazily, so `deepvib.export.options` stays free of
TensorFlow's start-up cost.
"""

from __future__ import annotations

__all__ = ["ExportOptions", "ExportResult", "export", "export_run"]


def __getattr__(name: str):
    if name == "ExportOptions":
        from deepvib.export.options import ExportOptions

        return ExportOptions
    if name in ("ExportResult", "export", "export_run"):
        from deepvib.export import exporter

        return getattr(exporter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
