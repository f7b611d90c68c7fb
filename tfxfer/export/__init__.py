"""Exports for TF Serving."""

from tfxfer.export.serving_export import export_for_serving

__all__ = ["export_for_serving"]
