"""Build the catalog snapshot shipped in the package from a models.dev checkout.

    python scripts/build_catalog_snapshot.py [--source ../shared/data/models.dev]
        [--out src/modelatlas/catalog/data/snapshot.json.gz] [--date YYYY-MM-DD]

The date defaults to the newest ``last_updated`` in the data. Every record is validated while
it is built, and the written file is loaded back to check it before the script reports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from pathlib import Path

from modelatlas.catalog.modelsdev import read_tree, to_records
from modelatlas.catalog.snapshot import load_snapshot, write_snapshot
from modelatlas.catalog.sync import newest_date
from modelatlas.errors import ModelAtlasError

ROOT = Path(__file__).resolve().parents[1]
SOURCE_LABEL = "models.dev checkout (MIT licence)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data" / "models.dev")
    parser.add_argument("--out", type=Path, default=ROOT / "src/modelatlas/catalog/data/snapshot.json.gz")
    parser.add_argument("--date", type=_day, help="the date the catalog is 'as of' (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        api = read_tree(args.source)
        records = to_records(api)
        date = args.date or newest_date(api) or dt.date.today().isoformat()
        write_snapshot(args.out, records, date=date, source=SOURCE_LABEL)
        started = time.perf_counter()
        snapshot = load_snapshot(args.out)
        load_s = time.perf_counter() - started
    except ModelAtlasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(
        f"{args.out}: {args.out.stat().st_size:,} bytes, {len(snapshot.records):,} records from "
        f"{len(snapshot.providers)} providers, dated {snapshot.date} (loads in {load_s:.2f} s)"
    )
    return 0


def _day(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-07-02") from None


if __name__ == "__main__":
    sys.exit(main())
