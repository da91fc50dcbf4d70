"""Images in evaluations (issue 14 item 1): an ``image`` column of paths or lists of paths, a
Hugging Face imagefolder and a datasets Image feature; a hash over the pictures' bytes; bad rows
named by file and line; templates placing the pictures; text-only models refused at planning time;
an eval of the tiny random LLaVA (tests.tiny_vision) and the run page's thumbnails."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil

import pytest
from typer.testing import CliRunner

from modelatlas.cli.main import app
from modelatlas.errors import ConfigError, DatasetError
from modelatlas.evals.datasets import load_dataset
from modelatlas.evals.prompting import load_template, question_text, render
from modelatlas.parts import TextPart
from tests.conftest import needs

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

pytestmark = needs("PIL")

COLOURS = {"red.png": (255, 0, 0), "blue.png": (0, 0, 255), "pics/green.png": (0, 160, 0)}
ROWS = [
    {"id": "a", "image": "red.png", "input": "What colour is it?", "reference": "red"},
    {"id": "b", "image": ["red.png", "blue.png"], "input": "What colour is it?", "reference": "red and blue"},
    {"id": "c", "image": "pics/green.png", "input": "Name the colour.", "reference": "green"},
]
ONE_EACH = [{**row, "image": "blue.png"} if row["id"] == "b" else row for row in ROWS]  # one picture a row
TEXT_ONLY = ["local/smollm2-135m-instruct", "openai/gpt-3.5-turbo"]


def png(colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(out, "PNG")
    return out.getvalue()


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three pictures, and the same three rows as JSONL (paths and a list), as CSV (the list as a
    JSON cell) and as an imagefolder (one picture a row: row b keeps only its blue one)."""
    root = tmp_path_factory.mktemp("images")
    (root / "pics").mkdir()
    for name, colour in COLOURS.items():
        (root / name).write_bytes(png(colour))
    write_jsonl(root / "items.jsonl", ROWS)
    with open(root / "items.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["id", "image", "input", "reference"])
        writer.writeheader()
        for row in ROWS:
            image = row["image"]
            writer.writerow({**row, "image": json.dumps(image) if isinstance(image, list) else image})
    (root / "folder").mkdir()
    for row in ONE_EACH:
        shutil.copy(root / row["image"], root / "folder" / os.path.basename(row["image"]))
    metadata = [
        {"file_name": os.path.basename(row["image"]), **{k: v for k, v in row.items() if k != "image"}}
        for row in ONE_EACH
    ]
    write_jsonl(root / "folder" / "metadata.jsonl", metadata)
    write_jsonl(root / "one_each.jsonl", ONE_EACH)
    return root


def test_paths_lists_csv_and_imagefolder_load_their_pictures_with_one_hash(folder):
    jsonl = load_dataset(folder / "items.jsonl")
    assert [len(item.images) for item in jsonl.items] == [1, 2, 1]
    assert jsonl.items[1].images[1].path == (folder / "blue.png").resolve()
    assert {image.media_type for item in jsonl.items for image in item.images} == {"image/png"}
    assert jsonl.items[0].metadata == {}  # the image column is no metadata
    # the hash is the content's, whatever the format: CSV (a JSON list cell) as JSONL
    assert load_dataset(folder / "items.csv").hash == jsonl.hash
    imagefolder = load_dataset(folder / "folder")
    assert [item.images[0].path.name for item in imagefolder.items] == ["red.png", "blue.png", "green.png"]
    assert imagefolder.hash == load_dataset(folder / "one_each.jsonl").hash
    assert imagefolder.hash != jsonl.hash


@needs("datasets")
def test_a_datasets_image_feature_is_read_as_bytes_with_the_same_hash(folder, tmp_path):
    import datasets

    table = {key: [row[key] for row in ONE_EACH] for key in ROWS[0]}
    table["image"] = [{"path": None, "bytes": (folder / name).read_bytes()} for name in table["image"]]
    features = datasets.Features(
        {"id": datasets.Value("string"), "image": datasets.Image(), "input": datasets.Value("string")}
        | {"reference": datasets.Value("string")}
    )
    datasets.Dataset.from_dict(table, features=features).save_to_disk(str(tmp_path / "hf"))
    loaded = load_dataset(tmp_path / "hf")
    assert all(item.images[0].data is not None and item.images[0].path is None for item in loaded.items)
    assert loaded.items[0].images[0].data == png(COLOURS["red.png"])
    # a picture counts by its bytes, held or on disk
    assert loaded.hash == load_dataset(folder / "one_each.jsonl").hash
    # several pictures a row: a list of Image features
    table = {key: [row[key] for row in ROWS] for key in ROWS[0]}
    pictures = [row["image"] if isinstance(row["image"], list) else [row["image"]] for row in ROWS]
    table["image"] = [
        [{"path": None, "bytes": (folder / name).read_bytes()} for name in row] for row in pictures
    ]
    features["image"] = datasets.List(datasets.Image())
    datasets.Dataset.from_dict(table, features=features).save_to_disk(str(tmp_path / "hf-lists"))
    lists = load_dataset(tmp_path / "hf-lists")
    assert [len(item.images) for item in lists.items] == [1, 2, 1]
    assert lists.hash == load_dataset(folder / "items.jsonl").hash  # one picture or a list of one: the same


def test_the_hash_covers_the_pictures_bytes_not_their_names(folder, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    before = load_dataset(copy / "items.jsonl").hash
    (copy / "pics" / "green.png").write_bytes(png((0, 161, 0)))  # one shade lighter, same name
    after = load_dataset(copy / "items.jsonl").hash
    assert after != before
    (copy / "pics" / "green.png").write_bytes(png(COLOURS["pics/green.png"]))
    assert load_dataset(copy / "items.jsonl").hash == before
    (copy / "pics" / "green.png").rename(copy / "pics" / "renamed.png")  # other name, same bytes
    renamed = [{**row, "image": "pics/renamed.png"} if row["id"] == "c" else row for row in ROWS]
    assert load_dataset(write_jsonl(copy / "renamed.jsonl", renamed)).hash == before


BAD_ROWS = [
    ({"image": "gone.png"}, "gone.png, which does not exist", "read from the dataset's folder"),
    ({"image": "items.jsonl"}, "is not an image (not PNG, JPEG, GIF, WebP, BMP or TIFF)", "picture file"),
    ({"image": ["red.png", "items.csv"]}, "field 'image[1]': ", "convert other formats"),
    ({"image": []}, "field 'image' is an empty list", "relative to the dataset"),
    ({"image": "https://example.com/cat.png"}, "is a URL", "Download the picture"),
    ({"image": 7}, "must be the path of an image file, got int", "For example"),
    ({"image": "pics"}, "which is a folder", "For example"),
]


@pytest.mark.parametrize(("bad", "says", "hint"), BAD_ROWS)
def test_a_bad_image_row_is_named_by_file_and_line(folder, bad, says, hint):
    path = folder / "bad.jsonl"
    write_jsonl(path, [ROWS[0], {**ROWS[2], "id": "x", **bad}])
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    assert caught.value.message.startswith(f"{path}:2: ")
    assert says in caught.value.message and hint in (caught.value.hint or "")


def test_an_imagefolder_row_without_its_file_is_named(folder, tmp_path):
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "a.png", "input": "x"}\n{"input": "y"}\n')
    (tmp_path / "a.png").write_bytes(png((1, 2, 3)))
    with pytest.raises(DatasetError, match=r"metadata.jsonl:2: the row has no 'file_name'"):
        load_dataset(tmp_path)


def test_templates_place_the_pictures_and_plain_prompts_put_them_first(folder, tmp_path):
    item = load_dataset(folder / "items.jsonl").items[1]
    red, blue = item.images
    assert render(item, [], "chat")[0].content == [red, blue, TextPart(text="What colour is it?")]
    (tmp_path / "both.j2").write_text("Look:\n{{ image }}\n{{ input }}")
    (tmp_path / "swap.j2").write_text("Second {{ images[1] }} first {{ images[0] }}. {{ input }}")
    (tmp_path / "one.j2").write_text("Q: {{ input }} {{ images[1] }}")
    both = render(item, [], "chat", template=load_template(str(tmp_path / "both.j2")))[0].content
    assert both == [TextPart(text="Look:\n"), red, blue, TextPart(text="\nWhat colour is it?")]
    swap = render(item, [], "chat", template=load_template(str(tmp_path / "swap.j2")))[0].content
    expected = [TextPart(text="Second "), blue, TextPart(text=" first "), red]
    assert swap == [*expected, TextPart(text=". What colour is it?")]
    one = render(item, [], "chat", template=load_template(str(tmp_path / "one.j2")))[0].content
    assert one == [red, TextPart(text="Q: What colour is it? "), blue]  # none is dropped silently
    # where only text goes (a retrieval query, a base model's transcript) the placeholder is empty
    assert question_text(item, load_template(str(tmp_path / "both.j2"))) == "Look:\n\nWhat colour is it?"
    text_item = load_dataset(write_jsonl(tmp_path / "t.jsonl", [{"input": "hi"}])).items[0]
    assert render(text_item, [], "chat", template=load_template(str(tmp_path / "both.j2")))[0].content == (
        "Look:\n\nhi"
    )


def test_a_plan_with_pictures_names_every_model_that_cannot_take_them(folder):
    from modelatlas.evals.plan import make_plan

    with pytest.raises(ConfigError) as caught:
        make_plan(str(folder / "items.jsonl"), [*TEXT_ONLY, "openai/gpt-4o"])
    message = caught.value.message
    assert message.endswith("local/smollm2-135m-instruct and openai/gpt-3.5-turbo cannot take images.")
    assert "gpt-4o " not in message and "--modality image" in caught.value.hint
    messages = [
        {"role": "user", "content": [{"type": "image", "path": "red.png"}, {"type": "text", "text": "?"}]}
    ]
    chat = write_jsonl(folder / "chat.jsonl", [{"messages": messages, "reference": "red"}])
    with pytest.raises(ConfigError, match=r"openai/gpt-3\.5-turbo cannot take images"):
        make_plan(chat, ["openai/gpt-3.5-turbo"])  # a picture inside the chat counts too
    make_plan(str(folder / "items.jsonl"), ["openai/gpt-4o"])  # a model that takes images plans
    with pytest.raises(ConfigError, match="rag:docs sends text only"):  # it would drop the pictures
        make_plan(str(folder / "items.jsonl"), ["openai/gpt-4o"], strategies=["rag:docs"])


def test_the_dry_run_estimates_an_image_dataset_without_a_call(folder):
    result = CliRunner().invoke(
        app, ["eval", str(folder / "items.jsonl"), "-m", "openai/gpt-4o", "--dry-run", "--json"]
    )
    assert result.exit_code == 0, result.output
    arm = json.loads(result.stdout)["arms"][0]
    assert arm["calls"] == 3 and arm["input_tokens"] > 0 and arm["cost_usd_expected"] > 0
    refused = CliRunner().invoke(app, ["eval", str(folder / "items.jsonl"), "-m", TEXT_ONLY[1], "--dry-run"])
    assert refused.exit_code == 2 and "cannot take images" in refused.output


@needs("torch")
@needs("transformers")
def test_an_eval_of_the_tiny_vlm_stores_the_pictures_and_the_run_page_shows_them(
    folder, tiny_vlm_path, tmp_path
):
    from starlette.testclient import TestClient

    import modelatlas as ma
    from modelatlas.evals import records
    from modelatlas.evals.image_rows import prompt_images
    from modelatlas.evals.report_html import write_html
    from modelatlas.studio.app import create_app
    from tests.tiny_vision import IMAGE_TOKENS

    added = CliRunner().invoke(app, ["models", "add", "local/tiny-vlm", "--path", tiny_vlm_path])
    assert added.exit_code == 0, added.output
    result = ma.evaluate(str(folder / "items.jsonl"), "local/tiny-vlm", max_tokens=3, metrics=["exact_match"])
    stored = {r.item_id: r for r in records.load_items(result.run_id)}
    assert all(r.output.error is None and r.output.text for r in stored.values())
    assert [len(prompt_images(stored[i].output.prompt)) for i in "abc"] == [1, 2, 1]
    assert prompt_images(stored["b"].output.prompt)[1].path == (folder / "blue.png").resolve()
    tokens = {i: stored[i].output.usage.input_tokens for i in "ab"}
    assert tokens["b"] - tokens["a"] == IMAGE_TOKENS  # the same text: the second picture reached the model
    folder_run = ma.evaluate(str(folder / "folder"), "local/tiny-vlm", max_tokens=3, metrics=["exact_match"])
    assert folder_run.summary.models[0].n == 3 and folder_run.summary.models[0].errors == 0

    with TestClient(create_app(), base_url="http://127.0.0.1:8765") as client:
        page = client.get(f"/runs/{result.run_id}")
        assert page.status_code == 200
        thumbs = [f"/runs/{result.run_id}/image?item={i}&amp;n={n}" for i, n in ("a0", "b0", "b1", "c0")]
        assert all(f'<img class="thumb" src="{src}"' in page.text for src in thumbs)
        picture = client.get(f"/runs/{result.run_id}/image", params={"item": "b", "n": 1})
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
        assert picture.content == (folder / "blue.png").read_bytes()
        assert client.get(f"/runs/{result.run_id}/image", params={"item": "b", "n": 2}).status_code == 404
        assert client.get(f"/runs/{result.run_id}/image", params={"item": "zz"}).status_code == 404
    # the standalone report points at the same files (file:// on the dataset's machine)
    report = write_html(result.summary, records.load_items(result.run_id), [], tmp_path / "report.html")
    assert f'<img class="thumb" src="{(folder / "blue.png").resolve().as_uri()}"' in report.read_text()


def test_stored_pictures_are_served_only_while_they_are_pictures(tmp_path):
    from modelatlas.evals.image_rows import INLINE_BYTES, report_src, served_bytes, still_there
    from modelatlas.parts import ImagePart, data_url

    red = png(COLOURS["red.png"])
    held = ImagePart(data=red, media_type="image/png")
    assert served_bytes(held) == (red, "image/png") and report_src(held) == data_url("image/png", red)
    big = ImagePart(data=red + b"\0" * INLINE_BYTES, media_type="image/png")
    assert report_src(big) is None  # too big for the page: the report leaves it out
    file = tmp_path / "red.png"
    file.write_bytes(red)
    on_disk = ImagePart(path=file, media_type="image/png")
    assert served_bytes(on_disk) == (red, "image/png") and report_src(on_disk) == file.as_uri()
    file.write_text("secret text now")  # replaced by something that is no picture: never served
    assert served_bytes(on_disk) is None
    file.unlink()  # gone: no thumbnail on the run page, no link in the report
    assert not still_there(on_disk) and report_src(on_disk) is None and still_there(held)
    assert served_bytes(on_disk) is None
    assert served_bytes(ImagePart(url="https://example.invalid/a.png")) is None  # a URL is never fetched


def test_an_imagefolder_of_label_folders_has_each_folder_as_the_reference(folder, tmp_path):
    for name in ("test/red/a.png", "test/blue/b.png", "train/red/c.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / f"{name.split('/')[1]}.png", tmp_path / name)
    (tmp_path / "test" / "README.txt").write_text("not a picture: left alone")
    dataset = load_dataset(tmp_path)  # the test split, as Hugging Face picks it
    assert [(item.id, item.reference) for item in dataset.items] == [
        ("blue/b.png", ["blue"]),
        ("red/a.png", ["red"]),
    ]
    assert dataset.items[1].images[0].path == (tmp_path / "test/red/a.png").resolve()
    (tmp_path / "test" / "blue" / "c.png").write_text("no picture")
    with pytest.raises(DatasetError, match=r"test:2: field 'image': .*c\.png is not an image"):
        load_dataset(tmp_path)
