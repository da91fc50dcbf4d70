"""The one GGUF header reader (``modelatlas.gguf_reader``) on the bundled SmolLM2 and Gemma files,
checked against the ``gguf`` package's own GGUFReader, and on cut-off and corrupt copies."""

from __future__ import annotations

import struct

import pytest

from modelatlas.backends.gguf_header import read_keys
from modelatlas.errors import ModelFileError
from modelatlas.gguf_reader import ArrayField, GGUFFormatError, read_header


@pytest.fixture(scope="module")
def smollm2_bytes(smollm2_path) -> bytes:
    with open(smollm2_path, "rb") as f:
        return f.read()


def test_smollm2_header_agrees_with_gguf_reader(smollm2_path):
    """Every scalar field, every array's type and length, and every tensor match GGUFReader."""
    gguf = pytest.importorskip("gguf")
    ours, full = read_header(smollm2_path), gguf.GGUFReader(smollm2_path)
    assert (ours.version, ours.tensor_count, ours.byte_order) == (3, len(full.tensors), "<")
    assert ours.kv_count == len(full.fields) - 3  # GGUFReader adds GGUF.version, tensor and kv counts
    assert [k for k in full.fields if not k.startswith("GGUF.")] == list(ours.fields)
    for name, field in full.fields.items():
        if name.startswith("GGUF."):
            continue
        if field.types[0] == gguf.GGUFValueType.ARRAY:
            assert ours.fields[name] == ArrayField(int(field.types[1]), len(field.data)), name
        else:
            assert ours.fields[name] == field.contents(), name
    assert [(t.name, t.type, list(t.shape), t.n_elements, t.offset) for t in ours.tensors] == [
        (
            t.name,
            int(t.tensor_type),
            t.shape.tolist(),
            int(t.n_elements),
            int(t.data_offset) - full.data_offset,
        )
        for t in full.tensors
    ]
    assert ours.data_offset == full.data_offset
    assert ours.data_end() == len(full.data)  # the last tensor ends at the end of the file
    for key in ("general.architecture", "llama.context_length", "general.license", "llama.block_count"):
        assert ours.values[key] == full.fields[key].contents(), key


@pytest.mark.parametrize(
    "fixture, arch, context, tensors, vocab",
    [("smollm2_path", "llama", 8192, 272, 49152), ("gemma_path", "gemma3", 32768, 236, 262144)],
)
def test_bundled_headers_give_their_facts(request, fixture, arch, context, tensors, vocab):
    path = request.getfixturevalue(fixture)
    header = read_header(path)
    assert header.values["general.architecture"] == arch
    assert header.values[f"{arch}.context_length"] == context
    assert header.tensor_count == len(header.tensors) == tensors
    assert header.fields["tokenizer.ggml.tokens"] == ArrayField(8, vocab)  # stepped over, not read
    assert read_keys(path, ["general.architecture", "*.context_length"]) == {
        "general.architecture": arch,
        f"{arch}.context_length": context,
    }


def test_wanted_keys_stop_the_read_early(gemma_path):
    header = read_header(gemma_path, ["general.architecture"], tensors=False)
    assert header.fields["general.architecture"] == "gemma3"
    assert "tokenizer.ggml.tokens" not in header.fields and header.data_offset is None


def test_truncated_and_corrupt_copies_raise_a_clear_error(tmp_path, smollm2_bytes):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(smollm2_bytes[:4096])  # inside the vocabulary
    with pytest.raises(GGUFFormatError, match="runs past the end of the file"):
        read_header(cut)
    with pytest.raises(ModelFileError, match="corrupt or unreadable GGUF header"):
        read_keys(cut, ["*.context_length", "general.no_such_key"])
    short = tmp_path / "short.gguf"
    short.write_bytes(smollm2_bytes[:10])
    with pytest.raises(GGUFFormatError, match="ends inside the header"):
        read_header(short)
    half = tmp_path / "half.gguf"
    half.write_bytes(smollm2_bytes[: len(smollm2_bytes) // 2])  # the header whole, the data cut
    assert read_header(half).data_end() == len(smollm2_bytes)
    for data, problem in [
        (b"", "empty"),
        (b"not a model at all", "missing GGUF magic"),
        (b"GGUF" + struct.pack("<IQQ", 1, 0, 0), "unsupported GGUF version 1"),
        (b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0), "implausible counts"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**40), "string length out of range"),
    ]:
        bad = tmp_path / "bad.gguf"
        bad.write_bytes(data)
        with pytest.raises(GGUFFormatError, match=problem):
            read_header(bad)


def test_big_endian_header(tmp_path):
    gguf = pytest.importorskip("gguf")
    np = pytest.importorskip("numpy")
    path = tmp_path / "be.gguf"
    writer = gguf.GGUFWriter(str(path), "llama", endianess=gguf.GGUFEndian.BIG)
    writer.add_context_length(512)
    writer.add_token_list(["a", "bb"])
    writer.add_tensor("a.weight", np.zeros((4, 8), np.float32))  # the writer swaps the bytes
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    header = read_header(path)
    assert header.byte_order == ">"
    assert header.values["llama.context_length"] == 512
    assert header.fields["tokenizer.ggml.tokens"] == ArrayField(8, 2)
    assert [(t.name, t.shape) for t in header.tensors] == [("a.weight", (8, 4))]
    assert header.data_end() == path.stat().st_size == len(gguf.GGUFReader(path).data)
