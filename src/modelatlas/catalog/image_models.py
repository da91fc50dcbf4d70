"""Hosted image-generation models of OpenAI and Azure OpenAI, with their per-image prices.

models.dev lists some of them (gpt-image-1, gpt-image-1-mini) with token prices, or none, and
in mode chat; it lists no DALL-E model under openai. Each record here runs through the openai
backend's ``images.generate`` (mode ``image_generation``) and is priced by the picture
(:attr:`Price.per_image`), at the model's default: 1024x1024, standard or medium quality. A
record of the same id from the snapshot keeps its facts and takes the mode, the task and the
price from here (its token prices are dropped: the per-image figure already covers them).

Sources of the prices (read 2026-12-02):
- OpenAI's pricing page, https://platform.openai.com/docs/pricing (Image generation), and its
  model pages, https://developers.openai.com/api/docs/models/gpt-image-1-mini: gpt-image-1-mini
  1024x1024 low $0.005, medium $0.011, high $0.036.
- gpt-image-1 1024x1024 low $0.011, medium $0.042, high $0.167: OpenAI's table as quoted by
  fal.ai (https://fal.ai/models/fal-ai/gpt-image-1/text-to-image/llms.txt) and the OpenAI
  community forum (https://community.openai.com/t/gpt-image-1-collected-pricing-information-and-why-responses-is-undocumented/1275254,
  which derives $0.04224 for medium from 1056 output tokens at $40 per million).
- dall-e-3 1024x1024 standard $0.040, hd $0.080; dall-e-2 1024x1024 $0.020 (512x512 $0.018,
  256x256 $0.016): https://openai.com/pricing as of 2023-12-25 (as recorded in
  github.com/kevinhermawan/Canvas model-info.json). OpenAI's model page now marks DALL-E 3
  deprecated; Azure deployments of it may still answer.
Other sizes and qualities cost more (QUALITY_PRICES); a call is charged the default figure.
"""

from __future__ import annotations

from modelatlas.catalog.records import Link, Modalities, ModelRecord, Price

PRICE_SOURCE = "https://platform.openai.com/docs/pricing"
PRICE_DATE = "2026-12-02"

# id -> (name, family, USD per 1024x1024 image at the default quality, release date)
OPENAI_IMAGES: dict[str, tuple[str, str, float, str]] = {
    "openai/gpt-image-1": ("GPT Image 1", "gpt-image", 0.042, "2025-04-23"),
    "openai/gpt-image-1-mini": ("GPT Image 1 mini", "gpt-image", 0.011, "2025-10-06"),
    "openai/dall-e-3": ("DALL-E 3", "dall-e", 0.040, "2023-11-06"),
    "openai/dall-e-2": ("DALL-E 2", "dall-e", 0.020, "2022-11-03"),
    "azure/gpt-image-1": ("GPT Image 1 (Azure)", "gpt-image", 0.042, "2025-04-23"),
    "azure/dall-e-3": ("DALL-E 3 (Azure)", "dall-e", 0.040, "2023-11-06"),
}

# USD per 1024x1024 image by quality, for the models that take one (see the sources above).
QUALITY_PRICES: dict[str, dict[str, float]] = {
    "gpt-image-1": {"low": 0.011, "medium": 0.042, "high": 0.167},
    "gpt-image-1-mini": {"low": 0.005, "medium": 0.011, "high": 0.036},
    "dall-e-3": {"standard": 0.040, "hd": 0.080},
}


def image_records() -> list[ModelRecord]:
    """OpenAI's and Azure's image models as hosted records of the openai backend."""
    return [_record(model_id, *facts) for model_id, facts in OPENAI_IMAGES.items()]


def _record(model_id: str, name: str, family: str, per_image: float, date: str) -> ModelRecord:
    provider, model = model_id.split("/", 1)
    if provider == "azure":
        options = {"api_key_env": "AZURE_OPENAI_API_KEY", "azure": True, "deployment": model}
    else:
        options = {"model": model, "api_key_env": "OPENAI_API_KEY"}
    return ModelRecord(
        id=model_id,
        name=name,
        provider=provider,
        family=family,
        mode="image_generation",
        tasks=["image-generation"],
        modalities=Modalities(input=["text"], output=["image"]),
        open_weights=False,
        hosting="hosted",
        price=Price(per_image=per_image),
        release_date=date,
        links=[
            Link(label="OpenAI image generation guide", url="https://platform.openai.com/docs/guides/images"),
            Link(label=f"OpenAI pricing (read {PRICE_DATE})", url=PRICE_SOURCE),
        ],
        source="modelatlas (OpenAI pricing page)",
        backend="openai",
        options=options,
    )


def hosted_images(known: dict[str, ModelRecord]) -> list[ModelRecord]:
    """The image records to put in the catalog over ``known`` (the snapshot's, by id): a record
    already known keeps its facts and takes the mode, the task, the text-to-image modalities
    and the per-image price."""
    found = []
    for record in image_records():
        had = known.get(record.id)
        if had is not None:
            update = {
                "mode": "image_generation",
                "tasks": ["image-generation"],
                "modalities": record.modalities,
                "price": record.price,
            }
            record = had.model_copy(update=update)
        found.append(record)
    return found
