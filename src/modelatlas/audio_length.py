"""How long a recording is, read from its header: what a speech model bills by, known before
the audio is sent (a dry-run estimate, a server's budget reservation)."""

from __future__ import annotations

import io
import struct

__all__ = ["audio_seconds", "wav_seconds"]


def audio_seconds(data: bytes) -> float | None:
    """The duration of ``data`` in seconds: a WAV's from its header, another container's from
    the audio decoder (PyAV, the speech extra) when installed; None when it cannot tell."""
    seconds = wav_seconds(data)
    if seconds is not None:
        return seconds
    try:
        import av
    except ImportError:
        return None
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            duration = container.duration if container.streams.audio else None
    except av.error.FFmpegError:
        return None
    return duration / 1_000_000 if duration else None  # av's time base: microseconds


def wav_seconds(audio: bytes) -> float | None:
    """A RIFF/WAVE file's duration: its data chunk's size over the format's byte rate."""
    if len(audio) < 12 or audio[:4] != b"RIFF" or audio[8:12] != b"WAVE":
        return None
    offset, byte_rate = 12, 0
    while offset + 8 <= len(audio):
        chunk, size = audio[offset : offset + 4], struct.unpack_from("<I", audio, offset + 4)[0]
        if chunk == b"fmt " and size >= 16 and offset + 16 <= len(audio):
            byte_rate = struct.unpack_from("<I", audio, offset + 16)[0]
        elif chunk == b"data":
            if not byte_rate:
                return None
            there = len(audio) - offset - 8  # a streamed WAV may give 0 or 0xFFFFFFFF as its size
            return (there if size in (0, 0xFFFFFFFF) else min(size, there)) / byte_rate
        offset += 8 + size + (size & 1)  # chunks are padded to an even size
    return None
