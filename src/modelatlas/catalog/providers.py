"""Presets for hosted providers and local OpenAI-compatible servers, used by `models add`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    base_url: str | None
    api_key_env: str | None
    azure: bool = False


PRESETS: dict[str, Preset] = {
    "openai": Preset(None, "OPENAI_API_KEY"),
    "azure": Preset(None, "AZURE_OPENAI_API_KEY", azure=True),
    "ollama": Preset("http://127.0.0.1:11434/v1", None),
    "vllm": Preset("http://127.0.0.1:8000/v1", None),
    "lmstudio": Preset("http://127.0.0.1:1234/v1", None),
    "llamacpp-server": Preset("http://127.0.0.1:8080/v1", None),
    "openrouter": Preset("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "groq": Preset("https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "mistral": Preset("https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    "deepseek": Preset("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    "together": Preset("https://api.together.xyz/v1", "TOGETHER_API_KEY"),
}
