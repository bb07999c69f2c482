"""A deterministic synthetic language pair for the demo and the end-to-end tests.

The source side is an English-like SVO language; the target side is an SOV language with
three noun genders, post-nominal adjectives, articles and adjectives that agree with their noun
in gender, number and case, an accusative case on the object, and verbs conjugated for number
and tense. Translating therefore needs reordering (verb to the end, adjective after the noun)
and agreement across words, over a lexicon of a few thousand word forms -- more than copying.

Everything is derived from a seed, so the same call always writes the same files.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ..outputs import atomic_output

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"

# Target articles by (definite, number, case, gender); number 0 = singular, case 0 = subject.
_ARTICLES = {
    (True, 0, 0): {"m": "lo", "f": "la", "n": "le"},
    (True, 0, 1): {"m": "lon", "f": "lan", "n": "le"},
    (True, 1, 0): {"m": "li", "f": "li", "n": "lia"},
    (True, 1, 1): {"m": "lis", "f": "lis", "n": "lia"},
    (False, 0, 0): {"m": "un", "f": "una", "n": "un"},
    (False, 0, 1): {"m": "unon", "f": "unan", "n": "un"},
    (False, 1, 0): {"m": "dei", "f": "dei", "n": "deia"},
    (False, 1, 1): {"m": "deis", "f": "deis", "n": "deia"},
}
_NOUN_PLURAL = {"m": "i", "f": "e", "n": "a"}  # replaces the stem's final vowel
_ADJ_SUFFIX = {(0, "m"): "o", (0, "f"): "a", (0, "n"): "e", (1, "m"): "i", (1, "f"): "e", (1, "n"): "a"}
_ADJ_ACC = "n"  # object adjectives add this
_VERB_SUFFIX = {("pres", 0): "et", ("pres", 1): "ent", ("past", 0): "ava", ("past", 1): "avan"}
_PREPOSITIONS = {"with": "kon", "near": "pres", "under": "sotto", "behind": "dietro", "for": "pira"}
_SRC_ARTICLES = {(True, 0): "the", (True, 1): "the", (False, 0): "a", (False, 1): "some"}
_NEG = ("not", "ne")


@dataclass
class Lexicon:
    nouns: List[Tuple[str, str, str]]  # (source stem, target stem, gender)
    adjectives: List[Tuple[str, str]]
    verbs: List[Tuple[str, str]]


def _word(rng: random.Random, syllables: int, used: set) -> str:
    while True:
        w = "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(syllables))
        if w not in used:
            used.add(w)
            return w


def make_lexicon(seed: int = 7, nouns: int = 300, adjectives: int = 80, verbs: int = 100) -> Lexicon:
    rng = random.Random(seed)
    used: set = set()
    src_used: set = set()

    def src_word(n: int) -> str:  # source words end in a consonant so English-like suffixes read well
        while True:
            w = "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(n)) + rng.choice("nrtlk")
            if w not in src_used:
                src_used.add(w)
                return w

    return Lexicon(
        nouns=[(src_word(rng.choice((1, 2, 2))), _word(rng, rng.choice((2, 3)), used), rng.choice("mfn"))
               for _ in range(nouns)],
        adjectives=[(src_word(rng.choice((1, 2, 2))), _word(rng, 2, used)[:-1]) for _ in range(adjectives)],
        verbs=[(src_word(rng.choice((1, 2, 2))), _word(rng, 2, used)[:-1]) for _ in range(verbs)],
    )


Link = Tuple[int, int, bool]  # (source word, target word, sure)


def _noun_phrase(rng: random.Random, lex: Lexicon, case: int) -> Tuple[List[str], List[str], List[Link]]:
    src_n, tgt_n, gender = rng.choice(lex.nouns)
    definite, number = rng.random() < 0.6, int(rng.random() < 0.4)
    adjs = rng.sample(lex.adjectives, k=rng.choice((0, 0, 1, 1, 2)))
    src = [_SRC_ARTICLES[(definite, number)]] + [a[0] for a in adjs] + [src_n + ("s" if number else "")]
    noun = tgt_n[:-1] + _NOUN_PLURAL[gender] if number else tgt_n
    tgt_adjs = [a[1] + _ADJ_SUFFIX[(number, gender)] + (_ADJ_ACC if case else "") for a in adjs]
    tgt = [_ARTICLES[(definite, number, case)][gender], noun] + tgt_adjs
    # article to article, noun to noun (after the article), adjectives after the noun
    links = [(0, 0, True), (len(adjs) + 1, 1, True)] + [(1 + k, 2 + k, True) for k in range(len(adjs))]
    return src, tgt, links


def _shifted(links: List[Link], di: int, dj: int) -> List[Link]:
    return [(i + di, j + dj, sure) for i, j, sure in links]


def make_aligned_pair(rng: random.Random, lex: Lexicon) -> Tuple[str, str, List[Link]]:
    """A sentence pair and its gold word alignment: which source word each target word translates
    (sure links; the tense auxiliary "did"/"do"/"does" is a possible link to the verb)."""
    subj_src, subj_tgt, subj_links = _noun_phrase(rng, lex, case=0)
    subj_plural = subj_src[-1].endswith("s") and subj_src[0] != "a"
    obj_src, obj_tgt, obj_links = _noun_phrase(rng, lex, case=1)
    src_v, tgt_v = rng.choice(lex.verbs)
    tense = "past" if rng.random() < 0.4 else "pres"
    negated = rng.random() < 0.2
    if tense == "past":
        verb_src = ["did", "not", src_v] if negated else [src_v + "ed"]
    elif negated:
        verb_src = ["do" if subj_plural else "does", "not", src_v]
    else:
        verb_src = [src_v if subj_plural else src_v + "s"]
    verb_tgt = ([_NEG[1]] if negated else []) + [tgt_v + _VERB_SUFFIX[(tense, int(subj_plural))]]
    # the verb links, relative to the verb's first word on each side
    verb_links = [(0, 1, False), (1, 0, True), (2, 1, True)] if negated else [(0, 0, True)]
    src, tgt = subj_src + verb_src + obj_src, subj_tgt + obj_tgt
    links = subj_links + _shifted(obj_links, len(subj_src) + len(verb_src), len(subj_tgt))
    if rng.random() < 0.35:
        prep = rng.choice(sorted(_PREPOSITIONS))
        pp_src, pp_tgt, pp_links = _noun_phrase(rng, lex, case=0)
        links += [(len(src), len(tgt), True)] + _shifted(pp_links, len(src) + 1, len(tgt) + 1)
        src += [prep] + pp_src
        tgt += [_PREPOSITIONS[prep]] + pp_tgt
    links += _shifted(verb_links, len(subj_src), len(tgt))
    return " ".join(src) + ".", " ".join(tgt + verb_tgt) + ".", sorted(links)


def pharaoh(links: List[Link]) -> str:
    """Links as a Pharaoh line: ``i-j`` (sure) and ``i?j`` (possible)."""
    return " ".join(f"{i}{'-' if sure else '?'}{j}" for i, j, sure in links)


def pos_tagger(lex: Lexicon):
    """A function from a source sentence to its words' parts of speech (DET, ADJ, NOUN, VERB, AUX,
    NEG, ADP), one per whitespace word: the toy corpus's source factor ``pos``. Every source stem
    belongs to one class and ends in one of "nrtlk", so inflected forms never collide."""
    tags = {w: "DET" for w in _SRC_ARTICLES.values()} | {w: "ADP" for w in _PREPOSITIONS} | \
        {w: "AUX" for w in ("did", "do", "does")} | {_NEG[0]: "NEG"} | {a: "ADJ" for a, _ in lex.adjectives}
    for n, _, _ in lex.nouns:
        tags[n] = tags[n + "s"] = "NOUN"
    for v, _ in lex.verbs:
        tags[v] = tags[v + "s"] = tags[v + "ed"] = "VERB"
    return lambda sentence: " ".join(tags[w.rstrip(".")] for w in sentence.split())


ALIGN = "align"  # the suffix of the toy corpus's gold alignment files (Pharaoh)
POS = "pos"  # the toy corpus's source factor: each source word's part of speech (SPLIT.SRC_LANG.pos)
DEFAULT_DIR = os.path.join("data", "toy")  # where the toy experiment reads it (relative to the working dir)
SPLITS = ("train", "valid", "test")


def corpus_text(sizes: Optional[Dict[str, int]] = None, seed: int = 7) -> Dict[str, Tuple[str, str, str, str]]:
    """{split: (source text, target text, gold word alignments in Pharaoh format, the source words'
    parts of speech)}; splits hold distinct sentences."""
    sizes = sizes or {"train": 20000, "valid": 500, "test": 500}
    lex = make_lexicon(seed)
    rng = random.Random(seed + 1)
    seen: set = set()
    tag = pos_tagger(lex)
    out: Dict[str, Tuple[str, str, str, str]] = {}
    for split, count in sizes.items():
        pairs: List[Tuple[str, str, str]] = []
        while len(pairs) < count:
            src, tgt, links = make_aligned_pair(rng, lex)
            if src not in seen:
                seen.add(src)
                pairs.append((src, tgt, pharaoh(links)))
        src_text, tgt_text, links_text = ("".join(p[side] + "\n" for p in pairs) for side in range(3))
        out[split] = (src_text, tgt_text, links_text, "".join(tag(p[0]) + "\n" for p in pairs))
    return out


def generate(out_dir: str, sizes: Optional[Dict[str, int]] = None, seed: int = 7,
             src_lang: str = "src", tgt_lang: str = "tgt") -> Dict[str, int]:
    """Write ``{train,valid,test}.{src_lang,tgt_lang}``, their gold word alignments
    ``{train,valid,test}.align`` and the source words' parts of speech ``{train,valid,test}.{src_lang}.pos``
    (a source factor) under ``out_dir``; returns the line counts.

    Never overwrites: a file that is already there must hold exactly what would be written (then it
    is left alone), else nothing is written and ``FileExistsError`` names it. Files are written to
    temporaries and renamed, so a reader never sees half a corpus.
    """
    texts = corpus_text(sizes, seed)
    files = {os.path.join(out_dir, f"{split}.{lang}"): text[side]
             for split, text in texts.items()
             for side, lang in ((0, src_lang), (1, tgt_lang), (2, ALIGN), (3, f"{src_lang}.{POS}"))}
    for path, text in files.items():
        if os.path.lexists(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                if f.read() != text:
                    raise FileExistsError(f"{path} exists and is not the toy corpus; not overwriting it "
                                          f"(choose another --out)")
    os.makedirs(out_dir, exist_ok=True)
    for path, text in files.items():
        if not os.path.lexists(path):
            with atomic_output(path) as f:
                f.write(text)
    return {split: text[0].count("\n") for split, text in texts.items()}


def corpus_files(directory: str) -> list:
    """Files in ``directory`` that look like corpus files (``SPLIT.LANG[.gz]``)."""
    if not os.path.isdir(directory):
        return []
    return sorted(n for n in os.listdir(directory) if n.split(".")[0] in SPLITS)
