"""The catalog: what each model is, and how to run it.

``search`` here is the function (``modelatlas.catalog.search("smol", task="chat")``, what the
facade's ``ma.catalog.search`` calls); it shadows the submodule ``catalog.search`` as an
attribute of this package. Importing ``catalog.query`` loads that submodule first, so this
binding wins and no later import undoes it; ``from modelatlas.catalog.search import Filters``
still reaches the module.
"""

from modelatlas.catalog.query import search
from modelatlas.catalog.records import ModelRecord, Price
from modelatlas.catalog.resolve import resolve, runnable_records

__all__ = ["ModelRecord", "Price", "resolve", "runnable_records", "search"]
