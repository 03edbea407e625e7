"""The 16 text features of the readability example.

One function, shared by the build script (which trains the trees on it) and the preprocess model
(which serves it), so training and serving cannot drift apart. Standard library only: at serving
time this file is copied next to preprocess.py in the model's version directory.

Syllables are counted with the usual vowel-group heuristic (as readability calculators do), so
Flesch scores here are close to, not identical with, those of a dictionary-based counter.
"""

from __future__ import annotations

import re

FEATURE_NAMES: tuple[str, ...] = (
    "n_chars",  # characters of the stripped text
    "n_words",
    "n_sentences",
    "chars_per_word",  # letters and digits per word
    "words_per_sentence",
    "syllables_per_word",
    "flesch_reading_ease",  # higher is easier; ~100 for a first reader, < 30 for a legal text
    "flesch_kincaid_grade",  # US school grade
    "gunning_fog",
    "coleman_liau",
    "long_word_ratio",  # words of 7 or more characters
    "polysyllable_ratio",  # words of 3 or more syllables
    "type_token_ratio",  # distinct words / words, case-insensitive
    "commas_per_sentence",
    "punctuation_ratio",  # punctuation characters / characters
    "max_words_per_sentence",
)
N_FEATURES = len(FEATURE_NAMES)

_WORD = re.compile(r"[A-Za-z0-9]+(?:['\u2019][A-Za-z]+)*")
_SENTENCE_END = re.compile(r"[.!?]+")
_VOWEL_GROUP = re.compile(r"[aeiouy]+")


def count_syllables(word: str) -> int:
    """Vowel groups, less a silent final -e and a final -es/-ed that adds no syllable."""
    w = re.sub(r"[^a-z]", "", word.lower())
    if not w:
        return 1  # a number is read as one unit
    n = len(_VOWEL_GROUP.findall(w))
    if n > 1:
        if w.endswith("e") and not w.endswith(("le", "ee", "ye")):
            n -= 1  # make, stone
        elif (w.endswith("ed") and w[-3] not in "aeiouytd") or (
            w.endswith("es") and w[-3] not in "aeiouycgsxz" and not w.endswith(("ches", "shes"))
        ):
            n -= 1  # jumped, makes (but wanted, faces, boxes, churches)
    return max(1, n)


def flesch_reading_ease(words_per_sentence: float, syllables_per_word: float) -> float:
    return 206.835 - 1.015 * words_per_sentence - 84.6 * syllables_per_word


def flesch_kincaid_grade(words_per_sentence: float, syllables_per_word: float) -> float:
    return 0.39 * words_per_sentence + 11.8 * syllables_per_word - 15.59


def sentence_word_counts(text: str) -> list[int]:
    """Words per sentence; a trailing fragment without a full stop is a sentence too."""
    counts = [len(_WORD.findall(part)) for part in _SENTENCE_END.split(text)]
    return [c for c in counts if c > 0]


def text_features(text: str) -> list[float]:
    """The feature vector of one text, in FEATURE_NAMES order (all ratios 0 for no words)."""
    text = text.strip()
    words = _WORD.findall(text)
    n_chars = len(text)
    n_words = len(words)
    if n_words == 0:
        return [float(n_chars)] + [0.0] * (N_FEATURES - 1)

    per_sentence = sentence_word_counts(text)
    n_sentences = len(per_sentence)
    letters = sum(len(w) for w in words)
    syllables = [count_syllables(w) for w in words]
    polysyllables = sum(s >= 3 for s in syllables)

    wps = n_words / n_sentences
    spw = sum(syllables) / n_words
    poly_ratio = polysyllables / n_words
    punctuation = sum(1 for c in text if not c.isalnum() and not c.isspace())
    features = [
        n_chars,
        n_words,
        n_sentences,
        letters / n_words,
        wps,
        spw,
        flesch_reading_ease(wps, spw),
        flesch_kincaid_grade(wps, spw),
        0.4 * (wps + 100.0 * poly_ratio),
        # Coleman-Liau: letters and sentences per 100 words.
        0.0588 * (100.0 * letters / n_words) - 0.296 * (100.0 * n_sentences / n_words) - 15.8,
        sum(len(w) >= 7 for w in words) / n_words,
        poly_ratio,
        len({w.lower() for w in words}) / n_words,
        text.count(",") / n_sentences,
        punctuation / n_chars,
        max(per_sentence),
    ]
    return [float(f) for f in features]


def flesch_target(text: str) -> float:
    """The regression target of the example: Flesch reading ease (higher = easier)."""
    return text_features(text)[FEATURE_NAMES.index("flesch_reading_ease")]
