"""The catalog: what each model is, and how to run it."""

from modelatlas.catalog.records import ModelRecord, Price
from modelatlas.catalog.resolve import resolve, runnable_records

__all__ = ["ModelRecord", "Price", "resolve", "runnable_records"]
