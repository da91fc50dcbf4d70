"""The price book of a server: what one request costs, per model.

Hosted models cost what the catalog says their provider charges. Local models are free unless
the operator sets a price: per 1M input and output tokens, per compute-hour, or per model in a
YAML file (``model-id: {input: 0.1, output: 0.4, per_hour: 2.0}``)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from modelatlas.catalog.records import ModelRecord, Price
from modelatlas.errors import ConfigError


class PriceBook:
    def __init__(self, local: Price | None = None, per_model: dict[str, Price] | None = None):
        self.local = local
        self.per_model = per_model or {}

    @classmethod
    def from_options(
        cls,
        input_per_1m: float | None = None,
        output_per_1m: float | None = None,
        per_hour: float | None = None,
        path: str | Path | None = None,
    ) -> PriceBook:
        local = None
        if input_per_1m or output_per_1m or per_hour:
            local = Price(input=input_per_1m or 0.0, output=output_per_1m or 0.0, per_hour=per_hour)
        return cls(local, _read(Path(path)) if path else {})

    def price(self, record: ModelRecord) -> Price | None:
        """The price that applies: the file's entry, else the catalog's, else the local default."""
        if record.id in self.per_model:
            return self.per_model[record.id]
        if record.price is not None and _charges(record.price):
            return record.price
        return self.local if _is_local(record) else record.price

    def apply(self, record: ModelRecord) -> ModelRecord:
        """The record with the price the server charges for it."""
        price = self.price(record)
        return record if price == record.price else record.model_copy(update={"price": price})


def _is_local(record: ModelRecord) -> bool:
    from modelatlas.backends.declared import facts

    return record.hosting == "local" or facts(record).local


def _charges(price: Price) -> bool:
    return bool(price.input or price.output or price.per_hour or price.audio_per_minute or price.per_image)


def _read(path: Path) -> dict[str, Price]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"No price file at {path}.", hint="Check the path given to --prices.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}", hint="Fix the file and start again.") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} must map model ids to prices.",
            hint="Example: 'local/smollm2-135m-instruct: {input: 0.1, output: 0.4}'",
        )
    prices = {}
    for model_id, fields in data.items():
        try:
            prices[str(model_id)] = Price(**(fields or {}))
        except (TypeError, ValidationError) as exc:
            raise ConfigError(
                f"{path}: the price of {model_id} is not valid ({_first(exc)}).",
                hint="Use the fields input and output (USD per 1M tokens) and per_hour (USD).",
            ) from None
    return prices


def _first(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return str(exc)
