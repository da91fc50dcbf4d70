"""The one stop-sequence scanner, shared by every backend that applies stop sequences itself.

Generated text arrives in pieces (a token's text, a streamer's chunk) and a stop sequence can
straddle two of them, so the scanner holds back the end of the text that could still begin a
stop sequence and emits the rest at once. The stop that counts is the one that is complete
first as the text grows (the earliest end; of two ending together, the longer): that is the
moment generation stops, and it makes the result independent of where the pieces were split.
"""

from __future__ import annotations

from collections.abc import Iterable


class StopScanner:
    """Cuts streamed text at the first stop sequence, holding back what may start one.

    ``feed`` each piece and pass on what it returns; once ``stopped`` is true the text has
    ended (further pieces give nothing); ``flush`` at the end gives what was held back."""

    def __init__(self, stops: Iterable[str]):
        stops = tuple(stops)
        for stop in stops:
            if not isinstance(stop, str):  # caught here, before any work, as the batcher needs
                raise TypeError(f"a stop sequence must be text, not {type(stop).__name__}")
        self.stops = tuple(s for s in stops if s)  # an empty stop would end every text at once
        self.pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The text that can be passed on now that ``text`` has arrived."""
        if self.stopped:
            return ""
        self.pending += text
        cut = first_stop(self.pending, self.stops)
        if cut is not None:
            self.stopped = True
            out, self.pending = self.pending[:cut], ""
            return out
        keep = max((_overlap(self.pending, s) for s in self.stops), default=0)
        split = len(self.pending) - keep
        out, self.pending = self.pending[:split], self.pending[split:]
        return out

    def flush(self) -> str:
        """What was held back, at the end of the text (nothing after a stop)."""
        out, self.pending = ("" if self.stopped else self.pending), ""
        return out


def first_stop(text: str, stops: Iterable[str]) -> int | None:
    """Where ``text`` is cut: the start of the stop sequence that ends first in it."""
    best: tuple[int, int] | None = None  # (end, -length): the earliest end, then the longest
    for stop in stops:
        start = text.find(stop) if stop else -1
        if start >= 0:
            key = (start + len(stop), -len(stop))
            best = key if best is None or key < best else best
    return None if best is None else best[0] + best[1]


def _overlap(text: str, stop: str) -> int:
    """The length of the longest end of ``text`` that begins ``stop`` (but is not all of it)."""
    for size in range(min(len(text), len(stop) - 1), 0, -1):
        if stop.startswith(text[-size:]):
            return size
    return 0
