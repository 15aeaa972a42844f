"""The warehouse: an embedded DuckDB file with Tailor's canonical tables, and ingestion into it."""

from tailor.store.ingest import IngestReport, ingest_files
from tailor.store.schema import KINDS, TableSpec
from tailor.store.warehouse import Warehouse

__all__ = ["KINDS", "IngestReport", "TableSpec", "Warehouse", "ingest_files"]
