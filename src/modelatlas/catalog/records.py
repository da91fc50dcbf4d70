"""The catalog's record types, re-exported from the core module :mod:`modelatlas.records`.

They moved down so that ``backends`` can read a record without importing ``catalog`` (issue 12:
no package cycles); every old ``from modelatlas.catalog.records import ...`` keeps working.
"""

from modelatlas.records import (
    ARCHITECTURES,
    HOSTINGS,
    TASKS,
    Architecture,
    Benchmark,
    Capabilities,
    Hosting,
    Link,
    Modalities,
    Mode,
    ModelRecord,
    Price,
    Task,
)

__all__ = [
    "ARCHITECTURES",
    "HOSTINGS",
    "TASKS",
    "Architecture",
    "Benchmark",
    "Capabilities",
    "Hosting",
    "Link",
    "Modalities",
    "Mode",
    "ModelRecord",
    "Price",
    "Task",
]
