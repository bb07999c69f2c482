"""Text in, text out: batch sentences by length, search, restore input order; and forced scoring."""
from __future__ import annotations

import functools
import itertools
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, cast

from .backends import backend_for
from .config import InferenceSettings, Precision
from .data.corpus import tag_words, with_prefix
from .data.factors import batch_tokens, row_tokens
from .data.spm import WORD_START, Tokenizer
from .errors import ConfigError
from .guides import Side, check_guides, guides_of, split_phrases, warn_unmet
from .resources import search_batch_limit
from .search import Hypothesis, SearchOptions, beam_search, greedy_search, sample_search
from .search.alignment import pharaoh, word_alignment, word_attention
from .search.arrays import ops_for
from .search.common import FREE, Guide, Prefix
from .search.options import MAX_OUTPUT_LEN, Strategy

if TYPE_CHECKING:  # a PyTorch model's passes import torch; an exported model's never do
    import torch


def _warn(message: str) -> None:
    import warnings
    warnings.warn(message, stacklevel=3)


def length_sorted_batches(lengths: Sequence[int], batch_size: int, max_tokens: int) -> List[List[int]]:
    """Indices grouped longest first into batches of at most ``batch_size`` sentences and
    ``max_tokens`` padded source tokens (a longer sentence gets a batch of its own)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: List[List[int]] = []
    current: List[int] = []
    for i in order:
        width = lengths[current[0]] + 1 if current else lengths[i] + 1
        if current and (len(current) >= batch_size or width * (len(current) + 1) > max_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def result_record(hyps: Sequence[Hypothesis], texts: Sequence[str], nbest: int,
                  extras: Optional[Sequence[dict]] = None) -> dict:
    """One input's result as ``nmt-translate --output-format jsonl`` and ``nmt-serve`` write it:
    ``{"translation", "score"[, "constraints_met"][, "nbest": [...]]}``, each hypothesis with its
    ``extras`` (alignment, attention) merged in; ``constraints_met`` where its line had lexical
    constraints (false: search found no translation holding them all)."""
    entries = [{"translation": t, "score": round(h.score, 6),
                **({} if h.constraints_met is None else {"constraints_met": h.constraints_met}),
                **(extras[k] if extras else {})} for k, (h, t) in enumerate(zip(hyps, texts))]
    record = dict(entries[0])
    if nbest > 1:
        record["nbest"] = entries
    return record


def check_one_line(lines: Sequence[str], name: str = "lines") -> None:
    """Each item is one sentence: a line break inside one is refused (the API and the server alike;
    files are split into lines as they are read)."""
    for k, line in enumerate(lines):
        if "\n" in line or "\r" in line:
            raise ConfigError(f"{name}[{k}]: holds a line break; give one sentence per item")


class Chunk(NamedTuple):
    """A piece of a streamed translation (``Translator.translate_stream``), in input order."""
    first: int  # the index of its first line in the whole input (from 0)
    lines: List[str]
    ids: List[List[int]]  # source ids per line, as translated (tagged, cut to max_src_len)
    results: List[List[Hypothesis]]  # per line, its n-best list
    aligned: Optional[List[List[dict]]]  # per line and hypothesis, {"alignment": ...} when asked for


class Translator:
    """Batched translation (greedy, beam or sampling, as ``options`` says) and forced scoring, for a
    model, an ``Ensemble`` or an exported bundle (``nmt.deploy.runtime.OnnxModel``; see
    ``backends.py``)."""

    def __init__(self, model, tokenizer: Tokenizer, options: SearchOptions = SearchOptions(),  # noqa: B008 (frozen)
                 batch_size: int = InferenceSettings.batch_size, max_tokens: int = InferenceSettings.max_tokens,
                 precision: Precision = Precision.fp32,
                 shortlist: Optional[dict[str, torch.Tensor]] = None, src_prefix: Optional[str] = None,
                 max_src_len: int = 0, warn: Optional[Callable[[str], None]] = None):
        """``src_prefix``: the tag the model was trained with before every source (``data.src_prefix``),
        put before every line ``encode_lines`` encodes; alignments count words without it.
        ``max_src_len``: longer sources are cut to it (0: never), each with a ``warn`` message
        (default: Python's ``warnings``), as every program and the API do with the model's
        ``data.max_len``."""
        if batch_size < 1 or max_tokens < 1:
            raise ConfigError(f"batch size and max tokens must be >= 1 (got {batch_size}, {max_tokens})")
        if shortlist is not None and not hasattr(model, "decoder"):
            raise ConfigError("a lexical shortlist works with a single model, not an ensemble")
        self.model, self.tok, self.options, self.shortlist = model, tokenizer, options, shortlist
        self.backend = backend_for(model, precision)
        self.src_prefix = src_prefix or None
        beam = options.beam_size if options.strategy is Strategy.beam else 1
        self.batch_size = min(batch_size, search_batch_limit(beam, self.backend.tgt_vocab_size))
        self.max_tokens, self.precision = max_tokens, precision
        self.max_src_len, self.warn = max_src_len, warn or _warn
        self.generator = self.backend.generator(options.seed)

    def _search(self, src, src_lens, prefix: Optional[Prefix] = None,
                phrases: Optional[List[Sequence[Sequence[int]]]] = None) -> List[List[Hypothesis]]:
        o, model = self.options, self.model
        if self.shortlist is not None:  # search over the batch's candidate tokens, then map back to ids
            from .search.shortlist import Shortlisted, candidates
            required = None if phrases is None else [[t for p in ps for t in p] for ps in phrases]
            model = Shortlisted(self.model, *candidates(self.shortlist, batch_tokens(src), required))
            if phrases is not None:  # constraint pieces, as candidate positions
                phrases = [[model.positions(p) for p in ps] for ps in phrases]
        if o.strategy is Strategy.greedy:
            out = greedy_search(model, src, src_lens, o, prefix=prefix)
        elif o.strategy is Strategy.sample:
            out = sample_search(model, src, src_lens, o, generator=self.generator, prefix=prefix)
        else:
            from .search.constraints import Constraints
            cons = None if phrases is None else Constraints.of(phrases, ops_for(src), self._continuations(model))
            out = beam_search(model, src, src_lens, o, prefix=prefix, constraints=cons)
        if self.shortlist is not None:
            out = [[h._replace(tokens=model.to_vocabulary(h.tokens)) for h in hyps] for hyps in out]
        return out

    @functools.cached_property
    def _word_continuations(self) -> Optional[List[int]]:
        words = getattr(self.tok, "tgt_word_continuations", None)  # a test's stand-in tokenizer may lack it
        return None if words is None else words()

    def _continuations(self, model) -> Optional[List[int]]:
        """The target pieces that continue a word (never right after a met constraint), as the ids
        ``model`` decodes over (a shortlist's candidate positions); None for a tokenizer without them."""
        if self._word_continuations is None or model is self.model:
            return self._word_continuations
        return model.positions(self._word_continuations, missing_ok=True)

    def _batches(self, src_ids: Sequence[Sequence[int]], todo: List[int]):
        """(input indices, source batch as the backend's arrays, lengths), longest batches first."""
        for group in length_sorted_batches([len(src_ids[i]) for i in todo], self.batch_size, self.max_tokens):
            idx = [todo[g] for g in group]
            yield (idx, *self.backend.sources([src_ids[i] for i in idx]))

    def translate_ids(self, src_ids: Sequence[Sequence[int]],
                      on_batch: Optional[Callable[[int], None]] = None,
                      guides: Optional[Sequence[Guide]] = None) -> List[List[Hypothesis]]:
        """Per input, its n-best list; an empty input gets [Hypothesis([], 0.0)] without decoding.
        ``on_batch`` is called with the number of sentences each batch finished (a progress bar).
        ``guides``: per input, target ids every hypothesis must start with and phrases it must
        contain (``Guide``; see ``Hypothesis.constraints_met``)."""
        if guides is not None:
            if len(guides) != len(src_ids):
                raise ConfigError(f"{len(guides)} prefixes or constraint lists for {len(src_ids)} inputs")
            check_guides(guides, self.options, self.shortlist is not None)
        results: List[Optional[List[Hypothesis]]] = [None] * len(src_ids)
        todo = [i for i, s in enumerate(src_ids) if len(s) > 0]
        with self.backend.running():
            for idx, src, src_lens in self._batches(src_ids, todo):
                mine = [FREE] * len(idx) if guides is None else [guides[i] for i in idx]
                prefix = Prefix.of([g.prefix for g in mine], ops_for(src)) if any(g.prefix for g in mine) else None
                phrases = [g.constraints for g in mine] if any(g.constraints for g in mine) else None
                for i, hyps in zip(idx, self._search(src, src_lens, prefix, phrases)):
                    results[i] = hyps
                if on_batch is not None:
                    on_batch(len(idx))
        if on_batch is not None:
            on_batch(len(src_ids) - len(todo))
        return [r if r is not None else [Hypothesis([], 0.0)] for r in results]

    def encode_lines(self, lines: Sequence[str], first_line: int = 1,
                     factors: Optional[Sequence[Sequence[str]]] = None, factor_names: Sequence[str] = (),
                     where: Callable[[str, int], str] = lambda name, number: f"{name} line {number}",
                     input_name: str = "input") -> List[Any]:
        """Source ids per line; blank lines give []; a line over ``max_src_len`` pieces is cut to it
        with a warning naming its number (``first_line``: the number of ``lines[0]``). A model with
        source factors needs ``factors``: per factor (the tokenizer's order), one line of values per
        input line, one value per word, checked (``where(name, number)`` names a bad line, with
        ``factor_names`` for the factors and ``input_name`` for the input);
        each line's ids are then a (len, 1 + factors) array (``data.src_factors``)."""
        encoded = iter(self.tok.encode_src(with_prefix([line for line in lines if line.strip()], self.src_prefix)))
        ids: List[Any] = [next(encoded) if line.strip() else [] for line in lines]
        if self.max_src_len:
            for k, ids_k in enumerate(ids):
                if len(ids_k) > self.max_src_len:
                    self.warn(f"line {first_line + k}: {len(ids_k)} pieces, truncated to {self.max_src_len}")
                    ids[k] = ids_k[:self.max_src_len]
        vocabs = getattr(self.tok, "factors", ())  # a test's stand-in tokenizer may lack them
        if not vocabs and factors is None:
            return ids
        from .data.factors import source_rows
        return source_rows(vocabs, ids, lines, factors, self.tok.src_word_start,
                           tag_words(self.src_prefix), first_line, factor_names, where,
                           input_name)

    def translate(self, lines: Sequence[str], prefixes: Optional[Sequence[str]] = None,
                  constraints: Optional[Sequence[Sequence[str]]] = None,
                  factors: Optional[Sequence[Sequence[str]]] = None) -> List[List[Tuple[str, float]]]:
        """Raw text in, n-best lists of (detokenized text, score) out, in input order; with
        ``prefixes``, each translation starts with its line's prefix; with ``constraints``, it contains
        each of its line's phrases (a line where search could not is warned about); ``factors``: the
        source factors' values (``encode_lines``)."""
        out = []
        results = self.translate_ids(self.encode_lines(lines, factors=factors),
                                     guides=guides_of(self.tok, len(lines), prefixes, constraints))
        warn_unmet(results, self.warn)
        for hyps in results:
            texts = self.tok.decode_tgt([h.tokens for h in hyps])
            out.append([(text, h.score) for text, h in zip(texts, hyps)])
        return out

    def translate_stream(self, lines: Iterable[str], chunk_size: int = 4000,
                         prefixes: Optional[Iterable[str]] = None, prefix_name: str = "the prefixes",
                         alignment: bool = False, on_batch: Optional[Callable[[int], None]] = None,
                         constraints: Optional[Iterable[str]] = None, constraint_name: str = "the constraints",
                         factors: Optional[Sequence[Iterable[str]]] = None, factor_names: Sequence[str] = (),
                         input_name: str = "the input") -> Iterator[Chunk]:
        """Translate a long input (a file, stdin) ``chunk_size`` lines at a time: each chunk is read,
        sorted into batches and translated before the next is read, so memory stays bounded and
        output can follow input. ``prefixes``: one target prefix per input line (blank: none);
        ``constraints``: one line of tab-separated phrases per input line (blank: none); each read
        alongside, a different line count refused, naming ``prefix_name`` / ``constraint_name``.
        ``alignment``: word alignments of every hypothesis (``alignments``). ``factors``: per source
        factor, one line of values per input line, read alongside (``factor_names``: their files,
        ``input_name``: the input's, for errors)."""
        lines = iter(lines)
        factor_sides = [Side(f, n) for f, n in zip(factors or [], factor_names or [""] * len(factors or []))]
        sides = [Side(prefixes, prefix_name), Side(constraints, constraint_name), *factor_sides]
        first = 0
        while chunk := list(itertools.islice(lines, chunk_size)):
            prefix_texts, constraint_lines, *factor_texts = (side.next(len(chunk), first) for side in sides)
            guides = guides_of(self.tok, len(chunk), prefix_texts,
                               None if constraint_lines is None else [split_phrases(c) for c in constraint_lines],
                               first=first + 1)
            ids = self.encode_lines(chunk, first + 1, None if factors is None else cast(List[List[str]], factor_texts),
                                    factor_names, lambda name, number: f"{name}:{number}", input_name)
            results = self.translate_ids(ids, on_batch=on_batch, guides=guides)
            warn_unmet(results, self.warn, first + 1)
            yield Chunk(first, chunk, ids, results, self.alignments(ids, results) if alignment else None)
            first += len(chunk)
        for side in sides:
            side.finish(first)

    def score_ids(self, src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]]
                  ) -> List[Tuple[float, int]]:
        """Per pair, (log-probability of target + EOS given the source, its token count), in input
        order. Every pair is scored by the model: a blank source is the source EOS alone, so a
        blank target next to it scores p(EOS | nothing), never a made-up 0."""
        if len(src_ids) != len(tgt_ids):
            raise ConfigError(f"{len(src_ids)} sources but {len(tgt_ids)} targets")
        from .search.score import forced_logprobs
        results: List[Tuple[float, int]] = [(0.0, 0)] * len(src_ids)
        todo = list(range(len(src_ids)))
        with self.backend.running():
            for idx, src, src_lens in self._batches(src_ids, todo):
                tgt = [tgt_ids[i] for i in idx]
                scores = forced_logprobs(self.model, src, src_lens, self.backend.targets(tgt, bos=True),
                                         self.backend.targets(tgt, eos=True))
                for i, s in zip(idx, scores):
                    results[i] = s
        return results

    def alignments(self, src_ids: Sequence[Sequence[int]], hyps: Sequence[Sequence[Hypothesis]],
                   weights: bool = False) -> List[List[dict]]:
        """Per input, per hypothesis: ``{"alignment": "0-0 1-2 ..."}`` (Pharaoh, whitespace words;
        see ``search.alignment``), with ``weights`` also ``{"attention": {"source": words, "target":
        words, "weights": rows of target words}}``. A model without attention gets an empty
        alignment and no weights."""
        pairs = [(i, k) for i, n in enumerate(hyps) for k in range(len(n)) if len(src_ids[i]) and n[k].tokens]
        tag = tag_words(self.src_prefix)  # the tag's words come first
        out: List[List[dict]] = [[{"alignment": ""} for _ in n] for n in hyps]
        attention = self._forced_attention([(src_ids[i], hyps[i][k].tokens) for i, k in pairs])
        for (i, k), att in zip(pairs, attention or []):
            src_pieces = self.tok.src_id_pieces(row_tokens(src_ids[i]))
            tgt_pieces = self.tok.tgt_pieces(hyps[i][k].tokens)
            record: dict[str, Any] = {"alignment": pharaoh([(s - tag, t) for s, t in
                                                           word_alignment(att, src_pieces, tgt_pieces) if s >= tag])}
            if weights:
                record["attention"] = {
                    "source": "".join(src_pieces).replace(WORD_START, " ").split()[tag:],
                    "target": "".join(tgt_pieces).replace(WORD_START, " ").split(),
                    "weights": [row[tag:] for row in word_attention(att, src_pieces, tgt_pieces)]}
            out[i][k] = record
        return out

    def attention_maps(self, src_ids: Sequence[Sequence[int]], hyps: Sequence[Hypothesis]
                       ) -> Optional[List[Optional[Tuple[List[str], List[str], torch.Tensor]]]]:
        """Per (source ids, hypothesis) pair, what the decoder attended to while emitting it:
        (source pieces + "</s>", target pieces + "</s>", weights (target + 1, source + 1), as
        ``_forced_attention`` gives them); None for a blank source. None altogether for a model
        without attention."""
        todo = [k for k, ids in enumerate(src_ids) if len(ids)]
        attention = self._forced_attention([(src_ids[k], hyps[k].tokens) for k in todo])
        if attention is None:
            return None
        maps: List[Optional[Tuple[List[str], List[str], torch.Tensor]]] = [None] * len(src_ids)
        for k, att in zip(todo, attention):
            maps[k] = (self.tok.src_id_pieces(row_tokens(src_ids[k])) + ["</s>"],
                       self.tok.tgt_pieces(hyps[k].tokens) + ["</s>"], att)
        return maps

    def _forced_attention(self, pairs: Sequence[Tuple[Sequence[int], Sequence[int]]]
                          ) -> Optional[List[torch.Tensor]]:
        """Per (source ids, target tokens) pair, the attention of each decoder step when it is fed the
        target (``search.alignment.forced_attention``: the step contract as search saw it, an
        ensemble's mean), in length-sorted batches: (target + 1, source + 1) fp32 tensors on the CPU,
        EOS rows and columns included. None for a model without attention."""
        from .search.alignment import forced_attention
        out: List[Optional[torch.Tensor]] = [None] * len(pairs)
        with self.backend.running():
            for group in length_sorted_batches([len(s) for s, _ in pairs], self.batch_size, self.max_tokens):
                src, src_lens = self.backend.sources([pairs[g][0] for g in group])
                tgt = self.backend.targets([pairs[g][1] for g in group], bos=True)
                att = forced_attention(self.model, src, src_lens, tgt)
                if att is None:
                    return None
                att = self.backend.host(att)  # (group, tgt_len, src_len), padded
                for row, g in enumerate(group):
                    out[g] = att[row, :len(pairs[g][1]) + 1, :len(pairs[g][0]) + 1]
        return cast("List[torch.Tensor]", out)  # every pair filled

    def score(self, sources: Sequence[str], targets: Sequence[str], first_line: int = 1,
              factors: Optional[Sequence[Sequence[str]]] = None) -> List[Tuple[float, int]]:
        """Raw text pairs in, (log-probability, tokens) out; see ``score_ids`` (``factors``: the
        sources' factor values, as ``encode_lines`` takes them)."""
        return self.score_ids(*self._pairs(sources, targets, first_line, factors))

    def align(self, sources: Sequence[str], targets: Sequence[str], first_line: int = 1,
              factors: Optional[Sequence[Sequence[str]]] = None) -> List[str]:
        """Raw text pairs in, their word alignment out (Pharaoh, per pair; see ``alignments``): what the
        model attends to while it is fed each given translation."""
        src_ids, tgt_ids = self._pairs(sources, targets, first_line, factors)
        return [n[0]["alignment"] for n in self.alignments(src_ids, [[Hypothesis(ids, 0.0)] for ids in tgt_ids])]

    def _pairs(self, sources: Sequence[str], targets: Sequence[str], first_line: int,
               factors: Optional[Sequence[Sequence[str]]] = None):
        """Given pairs as ids: sources cut as ``encode_lines`` says; a target longer than any output
        (``MAX_OUTPUT_LEN`` pieces) refused, naming its line (a cut one would get another's score)."""
        tgt_ids = self.tok.encode_tgt(targets)
        for k, ids in enumerate(tgt_ids):
            if len(ids) > MAX_OUTPUT_LEN:
                raise ConfigError(f"target line {first_line + k}: {len(ids)} pieces, longer than any translation "
                                  f"({MAX_OUTPUT_LEN}); split it or leave it out")
        return self.encode_lines(sources, first_line, factors), tgt_ids
