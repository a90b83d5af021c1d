"""Data layer: the workspace (Parquet tables + media), importers, the split and its statistics."""
