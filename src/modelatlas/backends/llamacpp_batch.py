"""Continuous batching: several sequences of one llama.cpp engine decoded in one call per step.

The batcher owns a second llama.cpp context on the engine's loaded weights, made for
``parallel`` sequences (llama-cpp-python's own context holds one). Each sequence slot has its
own KV cache stream (``kv_unified`` off) as long as the engine's context, capped so that all of
them hold at most ``MAX_CELLS`` tokens; a longer request runs alone, unbatched. Own streams
keep a sequence's output independent of the others: with one shared cache, a sequence's cells
interleave with theirs, the attention sums run in another order, and greedy answers drift
apart in the last bits.

Prefix caching, as llama-server's slots and vLLM's automatic prefix caching do it: a slot keeps
its KV cache when its sequence ends, with the tokens it holds. A new request goes to the free
slot whose cached tokens share the longest prefix with its prompt; the cells past that prefix
are freed and only the rest of the prompt is decoded. A shared system prompt or the same
few-shot examples then cost nothing after the first request (``reused`` counts the prompt
tokens not decoded again). A request whose prompt shares a longer prefix with a sequence still
running takes a copy of that sequence's cache instead (``llama_memory_seq_cp``), so requests
that arrive together decode their shared prefix once too: one that would share it with a
sequence still reading it waits for that sequence's next step (at most ``MIN_COPY`` tokens
less than it could reuse are left to decode).

Every llama.cpp call runs on the engine's thread (``Engine.submit``), one decode step per job:
while sequences are active the step submits itself again, so other jobs queued meanwhile
(tokenizing a new request, an unbatched call) run between two steps. Each step admits waiting
requests into free slots, feeds one token for every decoding sequence plus prompt tokens of the
ones still reading their prompt (chunked to the batch size), decodes once, and samples a token
for each sequence that needs one.

A problem that belongs to one request (sampling settings it cannot use, a consumer that fails)
ends that request alone, with its error; only a failed ``llama_decode`` fails the whole batch,
and then every request in it learns of it and the batcher goes on with the next ones.
"""

from __future__ import annotations

import codecs
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelatlas.backends import llama_adapter
from modelatlas.backends.channel import Done, Failed, Text, WorkerMessage
from modelatlas.backends.llamacpp_engine import Sampling
from modelatlas.backends.stops import StopScanner
from modelatlas.errors import BackendError, ContextLengthExceededError, InvalidRequestError

log = logging.getLogger(__name__)

TOP_K = 40
MIN_P = 0.05  # llama-cpp-python's default, so sampled answers read alike on both paths
MAX_CELLS = 16384  # KV cache cells (tokens) of all the slots together
MIN_COPY = 32  # prompt tokens a copy of a running sequence's cache must save to be worth it
peak = 0  # the most sequences any batcher in this process has decoded at once (for tests, benches)


@dataclass
class Request:
    """One generation. ``emit`` gets, on the engine thread, ``Text`` pieces and then ``Done``,
    as ``Engine.generate`` yields them; or ``Failed`` instead."""

    tokens: list[int]
    sampling: Sampling
    cancel: threading.Event
    emit: Callable[[WorkerMessage], None]


class Sequence:
    """A request in one of the batch's sequence slots, and the text it has made so far."""

    def __init__(self, request: Request, seq_id: int, start: int = 0):
        self.request = request
        self.seq_id = seq_id
        self.pos = start  # tokens of this sequence in the KV cache (``start``: cached already)
        self.fed: list[int] = []  # the output tokens fed back, in the KV cache after the prompt
        self.next = -1  # the last sampled token, fed at the next step
        self.n_out = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.stops = StopScanner(request.sampling.stop)  # a stop that is not text fails here
        self.rng = np.random.default_rng(request.sampling.seed)

    @property
    def prefilling(self) -> bool:
        return self.pos < len(self.request.tokens)

    def cached(self) -> list[int]:
        """The tokens this sequence has in its slot's KV cache, in order."""
        return (self.request.tokens + self.fed)[: self.pos]

    def accept(self, piece: bytes) -> str | None:
        """Add one output token's bytes; the finish reason when the sequence ends with it."""
        self.n_out += 1
        if text := self.stops.feed(self.decoder.decode(piece)):
            deliver(self.request, Text(text))
        if self.stops.stopped:
            return "stop"
        return "length" if self.n_out >= self.request.sampling.max_tokens else None

    def finish(self, reason: str) -> None:
        if rest := self.stops.feed(self.decoder.decode(b"", final=True)) + self.stops.flush():
            deliver(self.request, Text(rest))
        deliver(self.request, Done(reason, len(self.request.tokens), self.n_out))


def deliver(request: Request, item: WorkerMessage) -> None:
    """Hand ``item`` to the request's consumer. A consumer that raises is treated as one that
    left: its request is cancelled at the next step, and the other requests never see it."""
    try:
        request.emit(item)
    except Exception:
        log.exception("the consumer of a batched generation failed; cancelling that generation")
        request.cancel.set()


def sample(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator) -> int:
    """Greedy at temperature 0; otherwise llama.cpp's default chain as llama-cpp-python sets it
    up: top-k 40, top-p, min-p 0.05 (against the likeliest token), then the temperature."""
    if sampling.temperature <= 0:
        return int(np.argmax(logits))
    k = min(TOP_K, logits.size)
    ids = np.argpartition(logits, -k)[-k:]
    ids = ids[np.argsort(-logits[ids])]
    raw = logits[ids].astype(np.float64)
    probs = np.exp(raw - raw[0])
    probs /= probs.sum()
    if sampling.top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(probs), sampling.top_p)) + 1
        ids, raw, probs = ids[:keep], raw[:keep], probs[:keep]
    likely = probs >= MIN_P * probs[0]
    ids, raw = ids[likely], raw[likely]
    scaled = raw / sampling.temperature
    final = np.exp(scaled - scaled.max())
    return int(ids[rng.choice(len(ids), p=final / final.sum())])


class Batcher:
    """The batch scheduler of one engine. Create, use and close it on the engine's thread."""

    def __init__(self, engine, parallel: int):
        self.engine = engine
        self.requested = parallel
        self.llm = llm = engine.llm
        self.parallel = max(1, min(parallel, llama_adapter.batch_size(llm)))
        per_slot = min(engine.n_ctx, MAX_CELLS // self.parallel)
        self.ctx = llama_adapter.BatchContext(llm, self.parallel, per_slot)
        self.n_batch = self.ctx.n_batch
        self.n_ctx = min(per_slot, self.ctx.n_ctx_seq)
        self.n_vocab = llm.n_vocab()
        self.waiting: deque[Request] = deque()
        self.active: dict[int, Sequence] = {}
        self.cached: dict[int, list[int]] = {}  # a free slot -> the tokens its KV cache holds
        self.reused = 0  # prompt tokens taken from a slot's cache instead of decoded
        self.scheduled = False
        self.closed = False

    @property
    def idle(self) -> bool:
        return not self.active and not self.waiting

    def add(self, request: Request) -> None:
        """Queue a request (on the engine thread); it starts at the next step with a free slot.
        Check first that it :meth:`fits`; a request that cannot run gets its error at once."""
        if self.closed:
            deliver(request, Failed(BackendError("The model was unloaded before this request could run.")))
            return
        problem = self._problem(request)
        if problem is not None:
            deliver(request, Failed(problem))
            return
        self.waiting.append(request)
        if not self.scheduled:
            self._schedule()

    def _schedule(self) -> None:
        self.scheduled = True
        self.engine.submit(self.step)

    def _problem(self, request: Request) -> Exception | None:
        """Why a request cannot join the batch, if it cannot: checked before it does, since a
        bad token in the batch would fail everyone's decode."""
        tokens = request.tokens
        if not tokens:
            return InvalidRequestError(
                "The prompt is empty: it has no tokens to start from.", hint="Send a non-empty prompt."
            )
        if any(not 0 <= t < self.n_vocab for t in tokens):
            last = self.n_vocab - 1
            return InvalidRequestError(f"The prompt has a token id outside the vocabulary (0 to {last}).")
        if not self.fits(len(tokens) + request.sampling.max_tokens):
            name = Path(self.engine.path).name
            return ContextLengthExceededError(name, len(tokens), request.sampling.max_tokens, self.n_ctx)
        return None

    def step(self) -> None:
        """One decode step for every active sequence; schedules the next while work remains."""
        self.scheduled = False
        if self.closed:
            return
        try:
            self._drop_cancelled()
            self._admit()
            rows = self._fill()
            if self.ctx.n_tokens > 0:
                code = self.ctx.decode()
                if code != 0:  # the batch as a whole: every sequence in it loses its state
                    raise BackendError(f"llama.cpp could not decode the batch (error {code}).")
                self._sample(rows)
        except Exception as exc:  # every running request learns of it; the batcher goes on
            log.exception("a batched decode step failed; failing the requests in the batch")
            self._fail_all(exc)
        finally:
            if not self.idle and not self.closed:
                self._schedule()

    def _drop_cancelled(self) -> None:
        for seq in [s for s in self.active.values() if s.request.cancel.is_set()]:
            self._end(seq, "cancelled")
        for request in [r for r in self.waiting if r.cancel.is_set()]:
            self.waiting.remove(request)
            deliver(request, Done("cancelled", len(request.tokens), 0))

    def fits(self, n_tokens: int) -> bool:
        """Whether a prompt and its output of ``n_tokens`` in all fit one slot."""
        return n_tokens <= self.n_ctx

    def _admit(self) -> None:
        """Move waiting requests into free slots, first come first served. A request whose
        sequence cannot be set up (a seed numpy refuses, say) gets that error, alone."""
        while self.waiting and len(self.active) < self.parallel:
            request = self.waiting[0]
            placed = self._slot_for(request.tokens)
            if placed is None:  # its prefix is being decoded by a running sequence: next step
                break
            self.waiting.popleft()
            seq_id, start = placed
            try:
                self.active[seq_id] = Sequence(request, seq_id, start)
            except Exception as exc:
                self.ctx.drop(seq_id)
                deliver(request, Failed(_invalid(exc)))
                continue
            self.reused += start
        global peak
        peak = max(peak, len(self.active))

    def _slot_for(self, tokens: list[int]) -> tuple[int, int] | None:
        """The free slot whose cache shares the longest prefix with ``tokens`` (the lowest one
        on a tie), and how many tokens of that prefix it keeps: at least the last prompt token
        is decoded again, for the logits the first answer token is sampled from. Where a running
        sequence shares a longer prefix, the slot gets a copy of its cache; None while that
        sequence has yet to decode the prefix (the request waits a step)."""
        free = sorted(set(range(self.parallel)) - set(self.active))
        shared = {slot: _common_prefix(self.cached.get(slot, []), tokens) for slot in free}
        slot = max(free, key=lambda s: (shared[s], -s))
        keep = min(shared[slot], len(tokens) - 1)
        donor, lent = self._donor(tokens)
        lent = min(lent, len(tokens) - 1)
        if donor is not None and lent >= keep + MIN_COPY:
            if donor.pos < lent:
                return None
            self.cached.pop(slot, None)
            self.ctx.copy(donor.seq_id, slot)
            keep, held = lent, donor.pos  # the copy holds the donor's cells
        else:
            held = len(self.cached.pop(slot, []))
        if keep < held and not self.ctx.trim(slot, keep):
            self.ctx.drop(slot)
            keep = 0
        return slot, keep

    def _donor(self, tokens: list[int]) -> tuple[Sequence | None, int]:
        """The running sequence whose prompt shares the longest prefix with ``tokens``."""
        best, length = None, 0
        for seq in self.active.values():
            n = _common_prefix(seq.request.tokens, tokens)
            if n > length:
                best, length = seq, n
        return best, length

    def _fill(self) -> list[tuple[int, Sequence]]:
        """Put this step's tokens in the batch; the rows whose logits a sequence samples from."""
        rows: list[tuple[int, Sequence]] = []
        n = 0
        for seq in self.active.values():  # one token for each sequence past its prompt
            if not seq.prefilling:
                seq.fed.append(seq.next)
                self._put(n, seq.next, seq, True)
                rows.append((n, seq))
                n += 1
        for seq in self.active.values():  # then prompts, as much as the batch holds
            tokens = seq.request.tokens
            while seq.prefilling and n < self.n_batch:
                last = seq.pos == len(tokens) - 1
                self._put(n, tokens[seq.pos], seq, last)
                if last:
                    rows.append((n, seq))
                n += 1
        self.ctx.n_tokens = n
        return rows

    def _put(self, i: int, token: int, seq: Sequence, logits: bool) -> None:
        self.ctx.put(i, token, seq.pos, seq.seq_id, logits)
        seq.pos += 1

    def _sample(self, rows: list[tuple[int, Sequence]]) -> None:
        for i, seq in rows:
            try:
                self._next_token(i, seq)
            except Exception as exc:  # this sequence's settings or text: it alone ends
                log.exception("a batched sequence failed; ending it alone")
                self._end(seq, error=_invalid(exc))

    def _next_token(self, row: int, seq: Sequence) -> None:
        token = sample(self.ctx.logits(row), seq.request.sampling, seq.rng)
        if llama_adapter.ends_generation(self.llm, token):
            self._end(seq, "stop")
            return
        finish = seq.accept(self.engine.piece(token))
        if finish is not None:
            self._end(seq, finish)
        else:
            seq.next = token

    def _end(self, seq: Sequence, reason: str = "", error: Exception | None = None) -> None:
        """Finish a sequence: its last text and counts (or its error) out, its slot and KV
        cells freed."""
        if self.active.get(seq.seq_id) is not seq:
            return  # ended already (its consumer failed while it finished)
        del self.active[seq.seq_id]
        if error is None:  # the slot keeps its cache for a later request sharing its prefix
            self.cached[seq.seq_id] = seq.cached()
        else:
            self.ctx.drop(seq.seq_id)
        if error is not None:
            deliver(seq.request, Failed(error))
        else:
            seq.finish(reason)

    def _fail_all(self, exc: BaseException, waiting: bool = False) -> None:
        """Give every request in the batch (and with ``waiting``, those waiting for it) ``exc``,
        and empty the KV cache: the ones waiting start afresh at the next step."""
        requests = [s.request for s in self.active.values()]
        self.active.clear()
        if waiting:
            requests += list(self.waiting)
            self.waiting.clear()
        for request in requests:  # before anything else that might fail: nobody is left waiting
            deliver(request, Failed(exc))
        self.cached.clear()
        self.ctx.clear()

    def close(self) -> None:
        """Fail what is still queued and free the context and batch (on the engine thread)."""
        if self.closed:
            return
        self._fail_all(BackendError("The model was unloaded while this request ran."), waiting=True)
        self.closed = True
        self.ctx.close()


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _invalid(exc: Exception) -> Exception:
    """A request's own failure as the error its caller gets: ours as they are; numpy's and
    Python's (a seed or a setting it cannot use) as a 400 that says so."""
    if isinstance(exc, BackendError | InvalidRequestError):
        return exc
    if isinstance(exc, ValueError | TypeError | OverflowError):
        return InvalidRequestError(
            f"The sampling settings of this request cannot be used: {exc}.",
            hint="Check seed (an integer, 0 or more), temperature and top_p.",
        )
    return BackendError(f"The generation failed: {exc}.")
