"""A tiny randomly initialised LLaVA (image-text-to-text) model written entirely offline.

The folder holds a real transformers model (a 2-layer CLIP vision tower, a projector and a 2-layer
Llama), a byte-level BPE tokenizer trained in memory with an ``<image>`` special token, a 32x32
CLIP image processor and a chat template, so it loads through ``AutoModelForImageTextToText`` and
``AutoProcessor`` like a hub VLM. Weights are random but seeded, so outputs are deterministic;
nothing is downloaded. Each image becomes IMAGE_TOKENS placeholder tokens (32/8 squared patches,
the CLS feature dropped by the "default" selection strategy).
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SIZE = 32
PATCH = 8
IMAGE_TOKENS = (IMAGE_SIZE // PATCH) ** 2
MMPROJ_SCALE = 1.0

CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)

CORPUS = [
    "user: describe this picture. assistant: a red square on a blue field.",
    "user: what colour is the cat? assistant: the cat is black and white.",
    "system: you are a helpful assistant that looks at images and answers questions.",
    "the quick brown fox jumps over the lazy dog near the green river bank",
    "one two three four five six seven eight nine ten, hello world!",
]
SPECIALS = ["<s>", "</s>", "<pad>", "<image>"]


def _tokenizer():
    """A byte-level BPE tokenizer (any text encodes; about 400 tokens) built without a download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS, initial_alphabet=alphabet)
    raw.train_from_iterator(CORPUS, trainer)
    made = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        model_max_length=512,
        extra_special_tokens={"image_token": "<image>"},
    )
    made.chat_template = CHAT_TEMPLATE
    return made


def _model(tokenizer):
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=PATCH,
        projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.2,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=IMAGE_TOKENS,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval()
    _quiet_unprintable(model, tokenizer)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def _quiet_unprintable(model, tokenizer) -> None:
    """Zero the output rows of tokens that decode to unprintable text, so greedy replies read as
    (nonsense) printable words instead of control characters and broken UTF-8."""
    import torch

    with torch.no_grad():
        head = model.get_output_embeddings().weight
        for token_id in range(len(tokenizer)):
            text = tokenizer.decode([token_id])
            if token_id != tokenizer.eos_token_id and not (text.isascii() and text.isprintable()):
                head[token_id].zero_()


def build_tiny_vlm(folder) -> Path:
    """Write the tiny LLaVA (model, tokenizer, processor, chat template) into ``folder``."""
    from transformers import CLIPImageProcessor, LlavaProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    images = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    )
    processor = LlavaProcessor(
        image_processor=images,
        tokenizer=tokenizer,
        patch_size=PATCH,
        vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
        num_additional_image_tokens=1,
    )
    _model(tokenizer).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_tiny_mmproj(file, n_embd: int = 576) -> Path:
    """Write a tiny random LLaVA-style multimodal projector GGUF (a 1-block CLIP vision encoder
    at 32x32 with 8x8 patches, then the two-layer MLP projector into ``n_embd``, SmolLM2-135M's
    width by default) that llama.cpp's libmtmd loads: 16 image positions per picture."""
    import gguf
    import numpy as np

    rng = np.random.default_rng(0)
    width, ff, patches = 32, 64, IMAGE_TOKENS
    writer = gguf.GGUFWriter(str(file), "clip")
    writer.add_string("general.type", "mmproj")
    for key in ("clip.has_vision_encoder", "clip.has_llava_projector", "clip.use_gelu"):
        writer.add_bool(key, True)
    writer.add_string("clip.projector_type", "mlp")
    sizes = {"image_size": IMAGE_SIZE, "patch_size": PATCH, "embedding_length": width}
    sizes |= {"feed_forward_length": ff, "block_count": 1, "attention.head_count": 2}
    sizes["projection_dim"] = n_embd
    for key, value in sizes.items():
        writer.add_uint32(f"clip.vision.{key}", value)
    writer.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    writer.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    writer.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])

    def tensor(name: str, *shape: int, scale: float = 0.2) -> None:  # numpy (out, in): ggml's [in, out]
        writer.add_tensor(name, (rng.standard_normal(shape) * scale).astype(np.float32))

    tensor("v.patch_embd.weight", width, 3, PATCH, PATCH)
    tensor("v.class_embd", width)
    tensor("v.position_embd.weight", patches + 1, width)
    for norm in ("v.pre_ln", "v.blk.0.ln1", "v.blk.0.ln2"):
        tensor(f"{norm}.weight", width)
        tensor(f"{norm}.bias", width)
    for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
        tensor(f"v.blk.0.{name}.weight", width, width)
        tensor(f"v.blk.0.{name}.bias", width)
    tensor("v.blk.0.ffn_up.weight", ff, width)
    tensor("v.blk.0.ffn_up.bias", ff)
    tensor("v.blk.0.ffn_down.weight", width, ff)
    tensor("v.blk.0.ffn_down.bias", width)
    tensor("mm.0.weight", n_embd, width)
    tensor("mm.0.bias", n_embd)
    tensor("mm.2.weight", n_embd, n_embd, scale=MMPROJ_SCALE)  # loud pictures: the first token differs
    tensor("mm.2.bias", n_embd)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(file)
