"""Importers: each turns one source layout into a checked :class:`ImportBundle`.

========== ==================================================================
format     source
========== ==================================================================
movielens  ml-latest-small layout (movies.csv, ratings.csv, tags.csv)
ml100k     MovieLens-100K, GroupLens (u.data/u.item) or RecBole atomic files
table      any CSV/TSV/JSONL/Parquet logs with a column mapping
synthetic  generated power-law logs (no PATH)
========== ==================================================================
"""

from tailormind.data.importers.ml100k import import_ml100k
from tailormind.data.importers.movielens import import_movielens
from tailormind.data.importers.synthetic import import_synthetic
from tailormind.data.importers.table import import_table

FORMATS = ("movielens", "ml100k", "table", "synthetic")

__all__ = ["FORMATS", "import_ml100k", "import_movielens", "import_synthetic", "import_table"]
