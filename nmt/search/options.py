"""``SearchOptions``: every decoding setting in one checked, immutable value.

Shared by ``Translator``, the search functions, ``nmt-translate``, validation decoding, ensembles
and the Python API, so a setting is named and checked in one place.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import BEAM_SIZE, MAX_LEN_A, MAX_LEN_B, Choice, choose
from ..errors import ConfigError

# pieces: the longest output any search produces (or target ``nmt-score`` scores), whatever
# max_len_a and max_len_b say; a length limit without a bound allocates whatever it is asked for
MAX_OUTPUT_LEN = 1024


class Strategy(Choice):
    beam = "beam"
    greedy = "greedy"
    sample = "sample"


class Penalty(Choice):
    gnmt = "gnmt"
    average = "average"
    none = "none"


PENALTIES = tuple(m.value for m in Penalty)


@dataclass(frozen=True)
class SearchOptions:
    strategy: Strategy = Strategy.beam
    beam_size: int = BEAM_SIZE
    alpha: float = 1.0  # GNMT length-penalty exponent
    penalty: Penalty = Penalty.gnmt  # gnmt ((5+len)/6)^alpha | average (per token) | none
    coverage_penalty: float = 0.0  # GNMT's beta: + beta * sum_j log min(attention mass on j, 1) (0: off)
    max_len_a: float = MAX_LEN_A  # longest output: a * source length + b
    max_len_b: int = MAX_LEN_B
    min_len: int = 0  # no EOS before this many pieces
    nbest: int = 1  # hypotheses returned per sentence (beam only)
    temperature: float = 1.0  # sampling
    top_k: int = 0  # sampling among the k most probable tokens (0: all)
    top_p: float = 1.0  # nucleus sampling: among the fewest tokens whose probability reaches p (1: all)
    no_repeat_ngram: int = 0  # no hypothesis repeats an n-gram of this size (0: off)
    seed: int = 1  # sampling

    def __post_init__(self):
        # the one check of the two choices; everything downstream compares members
        object.__setattr__(self, "strategy", choose(Strategy, self.strategy, "search strategy"))
        object.__setattr__(self, "penalty", choose(Penalty, self.penalty, "length penalty"))
        for name in ("alpha", "coverage_penalty", "max_len_a", "temperature", "top_p"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"{name} must be a finite number, got {getattr(self, name)!r}")
        if self.beam_size < 1:
            raise ConfigError(f"beam size must be >= 1, got {self.beam_size}")
        if self.strategy is not Strategy.beam and self.nbest != 1:
            raise ConfigError("nbest lists need beam search")
        if not 1 <= self.nbest <= self.beam_size:
            raise ConfigError(f"nbest must be between 1 and the beam size ({self.beam_size}), got {self.nbest}")
        if self.coverage_penalty < 0:
            raise ConfigError(f"coverage penalty must be >= 0 (0: off), got {self.coverage_penalty}")
        if self.coverage_penalty and self.strategy is not Strategy.beam:
            raise ConfigError("a coverage penalty needs beam search (it ranks finished hypotheses)")
        if self.min_len < 0:
            raise ConfigError(f"min length must be >= 0, got {self.min_len}")
        a, b = self.max_len_a, self.max_len_b
        if a < 0 or b < 0 or (a == 0 and b < 1):
            raise ConfigError(f"max length a*src_len+b must allow at least one token (a={a}, b={b})")
        if a == 0 and self.min_len > b:
            raise ConfigError(f"min length ({self.min_len}) exceeds max length ({b})")
        if self.min_len > MAX_OUTPUT_LEN:
            raise ConfigError(f"min length ({self.min_len}) exceeds the longest output any search makes "
                              f"({MAX_OUTPUT_LEN} pieces)")
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if self.top_k < 0:
            raise ConfigError(f"top-k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top-p must be in (0, 1], got {self.top_p}")
        if self.no_repeat_ngram < 0:
            raise ConfigError(f"no-repeat-ngram must be >= 0 (0: off), got {self.no_repeat_ngram}")


def longest_output(options: SearchOptions, src_len: int) -> int:
    """The longest output allowed for a source of ``src_len`` pieces (without EOS)."""
    return max(1, min(MAX_OUTPUT_LEN, int(options.max_len_a * src_len + options.max_len_b)))


def check_min_len(options: SearchOptions, max_src: int, flag: str = "--min-len") -> None:
    """A minimum length that no output may reach (the longest allowed output is a * source length
    + b, at most ``MAX_OUTPUT_LEN``) would run every translation to its length limit: refused,
    naming ``flag`` (``--min-len`` on the command line, ``min_len`` in the API and the server)."""
    longest = longest_output(options, max_src)
    if options.min_len > longest:
        raise ConfigError(f"{flag} {options.min_len} exceeds the longest output allowed ({longest} pieces: "
                          f"max_len_a {options.max_len_a} x {max_src} source pieces + max_len_b {options.max_len_b}, "
                          f"at most {MAX_OUTPUT_LEN}); lower it")


def decoding_options(beam: int = SearchOptions.beam_size, greedy: bool = False, sample: bool = False,
                     **rest) -> SearchOptions:
    """The one way every caller turns its settings into ``SearchOptions``: ``nmt-translate``'s flags,
    the Python API's arguments, validation (``train.valid_beam``: 1 means greedy) and the end-of-run
    test (``train.test_beam``). ``sample`` wins over ``greedy``, which wins over beam search; ``rest``
    is any other field (``alpha``, ``max_len_a``, ``nbest``, ...)."""
    strategy = Strategy.sample if sample else Strategy.greedy if greedy else rest.pop("strategy", Strategy.beam)
    return SearchOptions(strategy=strategy, beam_size=beam, **rest)


def validation_options(train) -> SearchOptions:
    """Decoding for validation BLEU, from the ``train`` config group."""
    return decoding_options(train.valid_beam, greedy=train.valid_beam == 1, max_len_a=train.valid_max_len_a,
                            max_len_b=train.valid_max_len_b)


def end_of_run_options(train) -> SearchOptions:
    """Decoding for the end-of-run test translation: ``nmt-translate``'s defaults with ``train.test_beam``."""
    return decoding_options(train.test_beam)
