"""The 207 tree features of the benchmark pipeline (the size of NVIDIA's readability forest).

16 readability statistics (examples/readability/features.py: sentence and word lengths,
syllables, Flesch, Fog, Coleman-Liau, ...) and 191 hashed word frequencies: each word, lower-
cased, is counted in bucket crc32(word) mod 191, divided by the number of words. Plain Python,
the kind of per-text work a pipeline's pre-processing step really does. Standard library only:
at serving time this file and features.py lie next to preprocess.py.
"""

from __future__ import annotations

import re
import zlib

from features import N_FEATURES as N_READABILITY
from features import text_features

N_BUCKETS = 191
N_FEATURES = N_READABILITY + N_BUCKETS  # 207
_WORD = re.compile(r"[A-Za-z0-9]+(?:['\u2019][A-Za-z]+)*")


def hashed_words(text: str) -> list[float]:
    counts = [0.0] * N_BUCKETS
    words = _WORD.findall(text)
    for w in words:
        counts[zlib.crc32(w.lower().encode()) % N_BUCKETS] += 1.0
    n = max(len(words), 1)
    return [c / n for c in counts]


def all_features(text: str) -> list[float]:
    return text_features(text) + hashed_words(text)
