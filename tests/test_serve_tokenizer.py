"""GET /v1/models/{id}, POST /tokenize, POST /detokenize and GET /tokenizer_info on a real
`modelatlas serve` with a key: each model's own tokenizer, checked against the GGUF file's
vocabulary read here with llama-cpp-python and against the sentence-transformers tokenizer."""

from __future__ import annotations

import httpx
import pytest

from tests.servers import modelatlas_serve, new_key

openai = pytest.importorskip("openai")
llama_cpp = pytest.importorskip("llama_cpp")

CHAT = "local/smollm2-135m-instruct"  # its tokenizer adds no BOS
BASE = "local/gemma-3-270m"  # its tokenizer adds BOS
EMBED = "local/all-minilm-l6-v2"  # a BERT WordPiece tokenizer: [CLS] ... [SEP]
AUTH: dict[str, str] = {}
TEXT = "The capital of France is Paris."


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokenizer")
    AUTH["Authorization"] = f"Bearer {new_key(folder / 'home', 'tests')}"
    args = ["--parallel", "1", "--model", CHAT, "--model", BASE, "--model", EMBED]
    with modelatlas_serve(folder, args) as base:
        yield base


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key=AUTH["Authorization"].split()[1], max_retries=0)


@pytest.fixture(scope="module")
def vocab(smollm2_path, gemma_path):
    """The two GGUF files' tokenizers, loaded here without weights."""
    return {
        CHAT: llama_cpp.Llama(model_path=smollm2_path, vocab_only=True, verbose=False),
        BASE: llama_cpp.Llama(model_path=gemma_path, vocab_only=True, verbose=False),
    }


def post(server: str, path: str, **body) -> httpx.Response:
    return httpx.post(f"{server}{path}", json=body, headers=AUTH, timeout=120)


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def test_retrieve_a_model_by_its_id_with_a_slash(client):
    model = client.models.retrieve(CHAT)
    assert (model.id, model.object, model.owned_by) == (CHAT, "model", "local")


def test_retrieve_a_misspelt_model_is_404_with_did_you_mean(server, client):
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("local/smollm2-135m-instruc")
    response = httpx.get(f"{server}/v1/models/local/smollm2-135m-instruc", headers=AUTH, timeout=30)
    assert response.status_code == 404
    error = error_of(response)
    assert "Did you mean" in error["message"] and CHAT in error["message"]


@pytest.mark.parametrize("model", [CHAT, BASE])
def test_tokenize_gives_the_gguf_files_own_tokens(server, vocab, model):
    plain = post(server, "/tokenize", model=model, prompt=TEXT, add_special_tokens=False).json()
    assert plain["tokens"] == vocab[model].tokenize(TEXT.encode(), add_bos=False, special=True)
    assert plain["count"] == len(plain["tokens"]) and plain["max_model_len"] == 8192
    special = post(server, "/tokenize", model=model, prompt=TEXT).json()["tokens"]  # default: add them
    bos = vocab[model].token_bos()
    assert special == ([bos] + plain["tokens"] if model == BASE else plain["tokens"])


def test_special_tokens_in_the_text_are_parsed_as_such(server, vocab):
    tokens = post(server, "/tokenize", model=CHAT, prompt="<|im_start|>user", add_special_tokens=False).json()
    assert tokens["tokens"][0] == vocab[CHAT].tokenize(b"<|im_start|>", add_bos=False, special=True)[0]
    assert len(tokens["tokens"]) == 2


def test_detokenize_gives_the_text_back(server):
    for model in (CHAT, BASE, EMBED):
        ids = post(server, "/tokenize", model=model, prompt=TEXT, add_special_tokens=False).json()["tokens"]
        text = post(server, "/detokenize", model=model, tokens=ids).json()["prompt"]
        assert text == (TEXT.lower() if model == EMBED else TEXT)  # all-MiniLM lowercases
    with_bos = post(server, "/tokenize", model=BASE, prompt=TEXT).json()["tokens"]
    assert post(server, "/detokenize", model=BASE, tokens=with_bos).json()["prompt"] == "<bos>" + TEXT


def test_token_strings_and_llama_server_field_names(server):
    body = post(server, "/tokenize", model=CHAT, content="Hello world", add_special=False, with_pieces=True)
    answer = body.json()
    assert answer["token_strs"] == ["Hello", " world"] and len(answer["tokens"]) == 2


def test_tokenizer_info(server, vocab):
    base = httpx.get(f"{server}/tokenizer_info", params={"model": BASE}, headers=AUTH, timeout=60).json()
    assert (base["bos_token"], base["eos_token"], base["add_bos_token"]) == ("<bos>", "<eos>", True)
    assert base["model"] == BASE and base["model_max_length"] == 8192
    assert base["vocab_size"] == vocab[BASE].n_vocab()
    chat = httpx.get(f"{server}/tokenizer_info", params={"model": CHAT}, headers=AUTH, timeout=60).json()
    assert chat["eos_token"] == "<|im_end|>" and chat["add_bos_token"] is False
    assert "<|im_start|>" in chat["chat_template"]
    embed = httpx.get(f"{server}/tokenizer_info", params={"model": EMBED}, headers=AUTH, timeout=60).json()
    assert embed["pad_token"] == "[PAD]" and embed["model_max_length"] == 256
    ids = post(server, "/tokenize", model=EMBED, prompt="hello").json()["tokens"]
    assert ids[0] == 101 and ids[-1] == 102  # [CLS] hello [SEP]


def test_several_models_served_and_none_named_is_400(server):
    response = post(server, "/tokenize", prompt=TEXT)
    assert response.status_code == 400
    error = error_of(response)
    assert error["param"] == "model" and CHAT in error["message"]
    info = httpx.get(f"{server}/tokenizer_info", headers=AUTH, timeout=30)
    assert info.status_code == 400 and error_of(info)["param"] == "model"


def test_bad_tokenizer_requests_name_the_parameter(server):
    unknown = post(server, "/tokenize", model="local/gemma-3-27", prompt=TEXT)
    assert unknown.status_code == 404 and BASE in error_of(unknown)["message"]
    foreign = post(server, "/detokenize", model=CHAT, tokens=[1, 10**7])
    assert foreign.status_code == 400 and error_of(foreign)["param"] == "tokens[1]"
    number = post(server, "/tokenize", model=CHAT, prompt=5)
    assert number.status_code == 400 and error_of(number)["param"] == "prompt"
    keyless = httpx.post(f"{server}/tokenize", json={"model": CHAT, "prompt": TEXT}, timeout=30)
    assert keyless.status_code == 401


def test_a_chat_is_tokenized_as_the_model_reads_it(server, client, vocab):
    """messages (vLLM's chat variant): the templated prompt's tokens, as many as the chat route
    meters for the same messages, and the message's own tokens among them."""
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": TEXT}]
    response = post(server, "/tokenize", model=CHAT, messages=messages)
    assert response.status_code == 200, response.text
    tokens = response.json()["tokens"]
    answer = client.chat.completions.create(model=CHAT, messages=messages, max_tokens=1)
    assert answer.usage.prompt_tokens == len(tokens) == response.json()["count"]
    own = vocab[CHAT].tokenize(TEXT.encode(), add_bos=False, special=True)
    assert any(tokens[i : i + len(own)] == own for i in range(len(tokens)))
    assert len(tokens) > len(own) + 5  # the template's role markers


def test_bad_chat_tokenize_requests_name_the_parameter(server):
    messages = [{"role": "user", "content": "Hi"}]
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    cases = [
        ({"prompt": TEXT, "messages": messages}, "messages"),
        ({}, "prompt"),
        ({"messages": messages, "add_generation_prompt": False}, "add_generation_prompt"),
        ({"messages": messages, "tools": [tool]}, "tools"),  # SmolLM2's template takes no tools
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages"),
    ]
    for body, param in cases:
        response = post(server, "/tokenize", model=CHAT, **body)
        assert response.status_code == 400, (body, response.text)
        assert error_of(response)["param"].startswith(param), (body, error_of(response))
