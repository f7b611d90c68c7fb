"""Exports for TF Serving."""

from tfxfer.export.export_checks import predict_from_export, verify_export
from tfxfer.export.serving_export import export_for_serving, export_version_path, read_export_metadata
from tfxfer.export.warmup_requests import read_warmup_requests, write_warmup_requests

__all__ = [
    "export_for_serving",
    "export_version_path",
    "predict_from_export",
    "read_export_metadata",
    "read_warmup_requests",
    "verify_export",
    "write_warmup_requests",
]
