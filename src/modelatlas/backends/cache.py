"""The response cache: an answer is reused only for the same model, prompt and parameters.

The key covers the model's identity (its file's hash, or its base URL and remote name), the
full prompt as sent (every message, or the plain text), every generation parameter and the kind
of call. Changing any of them misses the cache, so a stale answer is never returned.

An image or audio part counts by the sha256 of its bytes (a path part's file is read, so the key
follows the file's content, and computing a key may block on disk: call it off the event loop).
A text prompt's key is what it was before parts existed, so existing caches keep hitting.
"""

from __future__ import annotations

import hashlib
import json
from typing import TypeVar

from pydantic import BaseModel

from modelatlas.images import ImageParams
from modelatlas.parts import AudioPart
from modelatlas.transcripts import TranscribeParams
from modelatlas.types import Completion, GenerationParams, Prompt

R = TypeVar("R", bound=BaseModel)


def cache_key(identity: str, prompt: Prompt, params: GenerationParams, kind: str = "generate") -> str:
    sent = prompt if isinstance(prompt, str) else [m.fingerprint() for m in prompt]
    blob = json.dumps(
        {"model": identity, "prompt": sent, "params": params.model_dump(mode="json"), "kind": kind},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def transcript_key(identity: str, audio: AudioPart, params: TranscribeParams) -> str:
    """The key of a transcription: the model, the audio's bytes (sha256) and every parameter.
    Reads a path part's file: call it off the event loop."""
    blob = json.dumps(
        {"model": identity, "audio": audio.fingerprint(), "params": params.model_dump(mode="json")},
        sort_keys=True,
    )
    return hashlib.sha256(f"transcribe:{blob}".encode()).hexdigest()


def image_key(identity: str, prompt: str, params: ImageParams) -> str:
    """The key of an image generation: the model, the prompt and every parameter (the seed
    too: a pipeline given the same seed draws the same pictures)."""
    blob = json.dumps(
        {"model": identity, "prompt": prompt, "params": params.model_dump(mode="json")}, sort_keys=True
    )
    return hashlib.sha256(f"image:{blob}".encode()).hexdigest()


class StoreCache:
    """The cache in the store's ``response_cache`` table (shared by every process)."""

    def get(self, key: str) -> Completion | None:
        return self.get_as(key, Completion)

    def get_as(self, key: str, kind: type[R]) -> R | None:
        """The stored answer under ``key`` as ``kind`` (a Completion, a Transcript, Images)."""
        from modelatlas.store.db import session
        from modelatlas.store.schema import CachedResponse

        with session() as s:
            row = s.get(CachedResponse, key)
            return None if row is None else kind.model_validate(row.response)

    def put(self, key: str, identity: str, completion: BaseModel) -> None:
        """Store an answer; two calls that store the same key at once both succeed (last wins)."""
        from sqlalchemy.exc import IntegrityError

        from modelatlas.store.db import session
        from modelatlas.store.schema import CachedResponse

        data = completion.model_dump(mode="json")
        try:
            with session() as s:
                row = s.get(CachedResponse, key)
                if row is None:
                    s.add(CachedResponse(key=key, model_key=identity, response=data))
                else:
                    row.response = data
        except IntegrityError:  # another task inserted the same key between our read and insert
            with session() as s:
                s.get(CachedResponse, key).response = data
