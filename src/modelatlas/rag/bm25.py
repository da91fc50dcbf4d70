"""Okapi BM25 over a list of texts, for stores without a full-text index of their own (Qdrant).

Terms are lower-cased word characters with a short English stop-word list removed; scores use
k1 = 1.5, b = 0.75 and the non-negative idf log(1 + (N - df + 0.5) / (df + 0.5)).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict

TOKEN = re.compile(r"\w+")
STOP_WORDS = frozenset(
    TOKEN.findall(
        "a an and are as at be but by can do does for from has have how i if in into is it its of on or "
        "our so that the their then there these they this to was we were what when where which who why "
        "will with you your"
    )
)


def terms(text: str) -> list[str]:
    return [t for t in TOKEN.findall(text.lower()) if t not in STOP_WORDS]


class BM25:
    def __init__(self, texts: list[str], k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b
        self.lengths: list[int] = []
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for doc, text in enumerate(texts):
            counts = Counter(terms(text))
            self.lengths.append(sum(counts.values()))
            for term, tf in counts.items():
                self.postings[term].append((doc, tf))
        self.average = (sum(self.lengths) / len(self.lengths)) if self.lengths else 0.0

    def __len__(self) -> int:
        return len(self.lengths)

    def idf(self, term: str) -> float:
        df = len(self.postings.get(term, ()))
        return math.log(1 + (len(self) - df + 0.5) / (df + 0.5))

    def top(self, query: str, k: int) -> list[tuple[int, float]]:
        """The k best (document number, score) pairs for ``query``; documents without a term are left out."""
        scores: dict[int, float] = defaultdict(float)
        for term in set(terms(query)):
            idf = self.idf(term)
            for doc, tf in self.postings.get(term, ()):
                norm = self.k1 * (1 - self.b + self.b * self.lengths[doc] / (self.average or 1.0))
                scores[doc] += idf * tf * (self.k1 + 1) / (tf + norm)
        return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
