"""A deterministic corpus of English-like texts, from a first reader's to a policy paper's.

The readability example has no labelled data set to ship (CommonLit's excerpts are not ours to
redistribute), so the build script trains on generated texts instead. Each text is drawn at a
difficulty d in [0, 1]: d raises the share of long, polysyllabic words and the number of clauses
per sentence, which is what readability formulas measure and what the encoder has to pick up.
"""

from __future__ import annotations

import numpy as np

# Three tiers of vocabulary per part of speech: one-syllable, everyday, academic.
NOUNS = (
    "cat dog sun boy girl ball tree bird fish hat cup bed car book cake frog duck pig cow hen "
    "box bus door hill lake road ship star shoe milk",
    "garden window teacher river market farmer paper letter morning doctor water table kitten "
    "basket pencil rabbit village mountain summer picture",
    "administration infrastructure methodology phenomenon interpretation characteristic "
    "responsibility consideration organization legislation circumstance manifestation "
    "predisposition concentration deterioration transformation accountability epistemology "
    "jurisprudence representation",
)
VERBS = (
    "ran sat saw hid ate had got fell sang fed found met held hit cut dug hugged grabbed "
    "liked made took drew",
    "opened followed carried visited painted answered noticed finished covered gathered "
    "borrowed watered wandered counted",
    "necessitated demonstrated illustrated characterized facilitated substantiated "
    "accommodated incorporated undermined reconsidered precipitated exacerbated corroborated "
    "differentiated",
)
ADJECTIVES = (
    "big red small hot old wet fat sad glad soft warm tall new good fast",
    "happy quiet little yellow simple gentle narrow busy careful early heavy pretty",
    "comprehensive unprecedented contemporary sophisticated fundamental considerable "
    "international philosophical socioeconomic institutional hypothetical disproportionate "
    "multidimensional",
)
OPENERS = (
    "Then So Now Yes",
    "Later Sometimes Often Luckily",
    "Consequently Nevertheless Notwithstanding Subsequently Correspondingly Paradoxically",
)
PRONOUNS = ("he", "she", "it", "we", "they", "I")
PREPOSITIONS = (
    ("in", "on", "by"),
    ("under", "behind", "across"),
    ("regarding", "concerning", "throughout", "notwithstanding"),
)
CONNECTORS = (
    ("and", "but", "so"),
    ("because", "while", "after"),
    ("whereas", "although", "insofar as", "inasmuch as", "notwithstanding that"),
)

_TIERS = {
    name: tuple(tuple(tier.split()) for tier in tiers)
    for name, tiers in {"noun": NOUNS, "verb": VERBS, "adj": ADJECTIVES, "opener": OPENERS}.items()
}


def _tier(rng: np.random.Generator, d: float) -> int:
    """Easy words dominate at d=0, academic ones at d=1, everyday ones in between."""
    weights = np.array([(1 - d) ** 2, 2 * d * (1 - d), d**2]) + 0.02
    return int(rng.choice(3, p=weights / weights.sum()))


def _pick(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    return words[int(rng.integers(len(words)))]


def _word(rng: np.random.Generator, d: float, pos: str) -> str:
    return _pick(rng, _TIERS[pos][_tier(rng, d)])


def _noun_phrase(rng: np.random.Generator, d: float, nested: bool = True) -> str:
    n_adjectives = int(rng.integers(0, 1 + round(2 * d)))
    phrase = " ".join(
        ["the", *(_word(rng, d, "adj") for _ in range(n_adjectives)), _word(rng, d, "noun")]
    )
    if nested and rng.random() < 0.6 * d:  # "the interpretation of the legislation"
        phrase += f" of {_noun_phrase(rng, d, nested=False)}"
    return phrase


def _clause(rng: np.random.Generator, d: float) -> str:
    subject = _pick(rng, PRONOUNS) if rng.random() < 0.4 * (1 - d) else _noun_phrase(rng, d)
    if rng.random() < 0.15:  # "it was warm"
        verb = "were" if subject in ("we", "they") else "was"
        return f"{subject} {verb} {_word(rng, d, 'adj')}"
    clause = f"{subject} {_word(rng, d, 'verb')} {_noun_phrase(rng, d)}"
    if rng.random() < 0.3:
        clause += f" {_pick(rng, PREPOSITIONS[_tier(rng, d)])} {_noun_phrase(rng, d)}"
    return clause


def _sentence(rng: np.random.Generator, d: float) -> str:
    clauses = [_clause(rng, d) for _ in range(1 + int(rng.integers(0, 1 + round(3 * d))))]
    text = clauses[0]
    for clause in clauses[1:]:
        connectors = CONNECTORS[_tier(rng, d)]
        text += f", {_pick(rng, connectors)} {clause}"
    if rng.random() < 0.2 + 0.5 * d:
        text = f"{_word(rng, d, 'opener')}, {text}"
    end = "!" if d < 0.3 and rng.random() < 0.2 else "."
    return text[0].upper() + text[1:] + end


def generate(n_texts: int, seed: int) -> tuple[list[str], list[float]]:
    """n_texts texts of 2-5 sentences, with the difficulty each was drawn at (evenly spread)."""
    rng = np.random.default_rng(seed)
    difficulties = [float(x) for x in rng.permutation(np.linspace(0.0, 1.0, n_texts))]
    texts = [
        " ".join(_sentence(rng, d) for _ in range(int(rng.integers(2, 6)))) for d in difficulties
    ]
    return texts, difficulties
