"""Per input line, what its translation must hold: a target prefix it starts with and lexical
constraints (phrases it contains), read from text (files, the API, the server) into target ids
(``search.common.Guide``) and checked, each refusal naming the line."""
from __future__ import annotations

import itertools
from typing import Callable, Iterable, List, NamedTuple, Optional, Sequence

from .data.spm import UNK, Tokenizer
from .errors import ConfigError
from .search.common import Guide, Hypothesis
from .search.constraints import MAX_PHRASES
from .search.options import MAX_OUTPUT_LEN, SearchOptions, Strategy


class GuideInput(NamedTuple):
    """One per-line input: the API's keyword and the server's field (``name``), nmt-translate's file
    option (``flag``: one line per input line) and what it does (``help``), declared once here."""
    name: str
    flag: str
    help: str


PREFIX = GuideInput("prefix", "--prefix-file", "a target prefix its translation starts with (forced, then searched on; "
                                               "its log-probability counts in the score; blank: none)")
CONSTRAINTS = GuideInput(
    "constraints", "--constraints",
    f"target phrases its translation contains (lexical constraints, decoded by beam search with dynamic beam "
    f"allocation; none, or up to {MAX_PHRASES}); a line whose translation could not hold them all is warned about "
    f"(jsonl records and the server's: \"constraints_met\": false)")

FACTORS = GuideInput(
    "factors", "--src-factors",
    "the values of the model's source factors (data.src_factors), each factor one line per input line holding one "
    "value per source word (whitespace-separated)")


def _check_spelled(tok: Tokenizer, text: str, ids: Sequence[int], where: str, verb: str) -> None:
    """Target text the vocabulary cannot spell (a character it has no piece for) is refused, named by
    ``where``: no translation can ``verb`` it."""
    if UNK in ids:
        missing = "".join(dict.fromkeys(c for c in text if not c.isspace() and UNK in tok.encode_tgt([c])[0]))
        raise ConfigError(f"{where}: the model's target vocabulary has no piece for {missing!r}, so no "
                          f"translation can {verb} {text!r}")


def encode_prefixes(tok: Tokenizer, prefixes: Sequence[str], first: int = 1, where: str = "prefix of line {}"
                    ) -> List[List[int]]:
    """Target ids per prefix text (a translation must start with them); a blank prefix gives [] (no
    constraint). A prefix the target vocabulary cannot spell, or one longer than any output, is
    refused, named by ``where`` with its number (counted from ``first``): no translation could start
    with it."""
    ids = tok.encode_prefixes(prefixes)
    for k, (text, ids_k) in enumerate(zip(prefixes, ids)):
        where_k = where.format(first + k)
        _check_spelled(tok, text, ids_k, where_k, "start with")
        if len(ids_k) > MAX_OUTPUT_LEN:
            raise ConfigError(f"{where_k}: {len(ids_k)} pieces, longer than any output ({MAX_OUTPUT_LEN})")
    return ids


CONSTRAINT_SEPARATOR = "\t"  # between the phrases of one line of a constraints file


def split_phrases(line: str) -> List[str]:
    """A constraints file's line: its phrases, tab-separated; blank fields (and a blank line) hold none."""
    return [p.strip() for p in line.split(CONSTRAINT_SEPARATOR) if p.strip()]


def encode_constraints(tok: Tokenizer, phrases: Sequence[Sequence[str]], first: int = 1,
                       where: str = "constraints of line {}") -> List[List[List[int]]]:
    """Per line, the target ids of each of its phrases (every translation must contain them; blank
    phrases are left out). A phrase the target vocabulary cannot spell, over ``MAX_PHRASES`` phrases,
    or phrases that together are longer than any output, are refused, named by ``where`` with the
    line's number (from ``first``)."""
    out = []
    for k, texts in enumerate(phrases):
        texts = [t for t in texts if t.strip()]
        where_k = where.format(first + k)
        if len(texts) > MAX_PHRASES:
            raise ConfigError(f"{where_k}: {len(texts)} phrases; at most {MAX_PHRASES} per line")
        ids = tok.encode_tgt(texts) if texts else []
        for text, ids_t in zip(texts, ids):
            _check_spelled(tok, text, ids_t, where_k, "contain")
        total = sum(len(i) for i in ids)
        if total > MAX_OUTPUT_LEN:
            raise ConfigError(f"{where_k}: {total} pieces together, longer than any output ({MAX_OUTPUT_LEN})")
        out.append(ids)
    return out


def guides_of(tok: Tokenizer, n: int, prefixes: Optional[Sequence[str]] = None,
              constraints: Optional[Sequence[Sequence[str]]] = None, first: int = 1,
              prefix_where: str = "prefix of line {}", constraint_where: str = "constraints of line {}"
              ) -> Optional[List[Guide]]:
    """Per line of ``n``, its ``Guide`` from its prefix text and its constraint phrases (either may be
    None: none); None when neither is given."""
    if prefixes is None and constraints is None:
        return None
    pre = encode_prefixes(tok, prefixes, first, prefix_where) if prefixes is not None else [()] * n
    con = encode_constraints(tok, constraints, first, constraint_where) if constraints is not None else [()] * n
    return [Guide(p, c) for p, c in zip(pre, con)]


def check_guides(guides: Sequence[Guide], options: SearchOptions, shortlist: bool) -> None:
    """What a search cannot combine with prefixes or constraints, refused before any decoding."""
    if shortlist and any(g.prefix for g in guides):
        raise ConfigError("a target prefix cannot be combined with a lexical shortlist")
    if options.strategy is not Strategy.beam and any(g.constraints for g in guides):
        raise ConfigError("lexical constraints need beam search (greedy decoding and sampling cannot meet them); "
                          "leave out greedy/sample (a beam of 1 works)")


def warn_unmet(results: Sequence[Sequence[Hypothesis]], warn: Callable[[str], None], first: int = 1) -> None:
    """A warning for each line (numbered from ``first``) whose translation lacks some of its constraints."""
    for k, hyps in enumerate(results):
        if hyps[0].constraints_met is False:
            warn(f"line {first + k}: search found no translation holding all of its constraints within the length "
                 f"limit; this one lacks some (a larger beam or max_len_b may find one)")


class Side:
    """A file read alongside the input, one line per input line (``Translator.translate_stream``)."""

    def __init__(self, lines: Optional[Iterable[str]], name: str):
        self.lines, self.name = (None if lines is None else iter(lines)), name

    def next(self, n: int, first: int) -> Optional[List[str]]:
        """The lines beside the input's next ``n`` (which start after line ``first``); None without a file."""
        if self.lines is None:
            return None
        texts = list(itertools.islice(self.lines, n))
        if len(texts) < n:
            raise ConfigError(f"{self.name} has {first + len(texts)} lines, fewer than the input")
        return texts

    def finish(self, count: int) -> None:
        """The input ended after ``count`` lines: so must this file."""
        if self.lines is not None and next(self.lines, None) is not None:
            raise ConfigError(f"{self.name} has more lines than the input ({count})")
