"""Each listed test catches a deliberate break: put one small change into the package, run the test
that should catch it, expect it to fail, restore the file. One line per break; the exit status is 1
if any break survives (MISSED) or can no longer be placed (STALE), so CI fails on either.

A break is located by the syntax tree, not by text: inside the named function (``Class.method`` or
``function``), the one expression or statement that reads as ``find`` once parsed (``ast.unparse``
of both, so spacing, line breaks, quotes and comments do not matter). When the code it names is
rewritten the break is reported STALE with what was searched, and the list is updated with it.

    python scripts/mutation_check.py            # all breaks
    python scripts/mutation_check.py -k ema     # those whose name contains "ema"
"""
from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Break:
    name: str
    path: str  # relative to the repository
    function: str  # qualified name inside the module: "Class.method" or "function"
    find: str  # an expression or a statement of that function, as source
    replace: str  # the source put in its place
    test: str  # the pytest node id that must fail once it is in


BREAKS = [
    # search
    Break("input order", "nmt/translator.py", "Translator.translate_ids",
          "zip(idx, self._search(src, src_lens, prefix, phrases))",
          "zip(sorted(idx), self._search(src, src_lens, prefix, phrases))",
          "tests/unit/test_translator.py::test_blank_lines_and_input_order_and_batch_size_invariance"),
    Break("only met hypotheses finish", "nmt/search/beam.py", "_Lexical.end",
          "finished.add(active, scores, is_eos & met, history, divisor, bonus)",
          "finished.add(active, scores, is_eos, history, divisor, bonus)",
          "tests/unit/test_constraints.py::test_phrases_no_hypothesis_can_hold_are_reported_not_dropped"),
    Break("gnmt length penalty", "nmt/search/beam.py", "length_penalty", "((5.0 + length) / 6.0) ** alpha", "1.0",
          "tests/unit/test_search.py"),
    Break("beam options checked", "nmt/search/options.py", "SearchOptions.__post_init__", "self.beam_size < 1",
          "False", "tests/unit/test_search.py::test_invalid_options_fail_before_decoding"),
    Break("n-gram blocking", "nmt/search/common.py", "block_repeats", "logp[rows[keep], banned[keep]] = float('-inf')",
          "pass", "tests/unit/test_search.py::test_block_repeats_forbids_the_tokens_that_would_repeat_an_ngram"),
    Break("shortlist candidates only", "nmt/search/shortlist.py", "Shortlisted.step",
          "logits.view(own.size(0), -1, own.size(1)).masked_fill(~own[:, None, :], float('-inf'))",
          "logits.view(own.size(0), -1, own.size(1))",
          "tests/unit/test_shortlist.py::test_a_sentence_translates_the_same_alone_and_in_any_batch"),
    # model
    Break("attention masks padding", "nmt/models/attention.py", "masked_softmax",
          "scores.masked_fill(~mask[:, None, :], float('-inf'))", "scores",
          "tests/unit/test_attention.py::test_weights_sum_to_one_and_are_zero_on_padding"),
    Break("Bahdanau keys once per batch", "nmt/models/attention.py", "BahdanauAttention.forward",
          "q = self.query_proj(query)", "q = self.query_proj(query); keys = self.key_proj(values)",
          "tests/unit/test_attention.py::test_bahdanau_keys_are_projected_once_per_batch"),
    # training
    Break("gradient-norm clipping", "nmt/training/update.py", "train_step",
          "clip_norm if clip_norm > 0 else float('inf')", "float('inf')",
          "tests/integration/test_loop.py::test_accumulated_gradients_equal_one_large_batch_and_clipping_caps_the_update"),
    Break("non-finite updates skipped", "nmt/training/update.py", "train_step",
          "math.isfinite(grad_norm) and math.isfinite(loss_sum)", "True",
          "tests/integration/test_loop.py::test_train_step_skips_non_finite_updates"),
    Break("linear teacher forcing", "nmt/training/schedules.py", "teacher_forcing_ratio",
          "float(start + (end - start) * frac)", "float(start)", "tests/unit/test_schedules.py::test_linear"),
    Break("teacher-forcing k rule", "nmt/config/rules.py", "_check_model",
          "p.add(teacher_forcing_k_rule(tf.schedule, tf.k))", "pass", "tests/unit/test_config.py"),
    Break("EMA warm start", "nmt/training/ema.py", "EMA.update", "min(self.decay, (1 + step) / (10 + step))",
          "self.decay", "tests/integration/test_loop.py::test_ema_averages_with_a_warm_start_and_applied_restores"),
    Break("resume restores the RNG state", "nmt/training/build.py", "build_run", "set_rng_state(ckpt['rng'])", "pass",
          "tests/integration/test_loop.py::test_resume_continues_exactly"),
    Break("guided alignment term", "nmt/training/loss.py", "Objective.forward", "loss + align_weight * guided", "loss",
          "tests/unit/test_alignments.py::test_the_objective_adds_the_weighted_guided_loss_and_reports_it_apart"),
    Break("a sentence's first piece starts a word", "nmt/data/alignments.py", "piece_words",
          "starts[:, 0] |= real[:, 0]", "pass",
          "tests/unit/test_alignments.py::test_pieces_map_to_words_by_the_word_start_marker_after_a_tag"),
    Break("weighted draw", "nmt/data/mixture.py", "quotas",
          "out[np.argsort(-(exact - out), kind='stable')[:short]] += 1", "pass",
          "tests/unit/test_mixture.py::test_quotas_split_the_total_by_weight_and_add_up"),
    # files
    Break("atomic output", "nmt/outputs.py", "atomic_output",
          "existing is not None and not stat.S_ISREG(existing.st_mode)", "True",
          "tests/unit/test_checkpoint.py::test_failed_write_keeps_the_previous_checkpoint"),
    Break("output that is its input refused", "nmt/outputs.py", "check_output",
          "st is not None and stat.S_ISREG(st.st_mode) and same_file(st, out)", "False",
          "tests/e2e/test_torture.py::test_translate_output_is_its_own_input"),
    Break("checkpoint checksums", "nmt/checkpoint.py", "check_integrity", "bad = archive.testzip()", "bad = None",
          "tests/e2e/test_torture.py::test_a_damaged_checkpoint_is_refused_everywhere"),
    Break("a user's directory is not a run", "nmt/training/rundir.py", "check_is_run_or_empty",
          "sorted((name for name in set(os.listdir(run_dir)) - set(ignored) - {LOCK_NAME} "
          "if not name.startswith(PROBE_PREFIX)))", "[]",
          "tests/e2e/test_torture.py::test_run_dir_holding_a_users_files_is_refused"),
    # machine
    Break("busy CPUs reported", "nmt/runtime.py", "check_busy", "free >= threads - 0.5", "free >= threads - 1.5",
          "tests/unit/test_threads.py::test_check_busy_reports_by_the_measured_load"),
    Break("bf16 where native", "nmt/precision.py", "resolve_precision", "Precision.bf16 if native else Precision.fp32",
          "Precision.fp32", "tests/unit/test_loss.py::test_precision_names"),
]


def _function(tree: ast.Module, qualname: str) -> Optional[ast.AST]:
    node: ast.AST = tree
    for part in qualname.split("."):
        node = next((n for n in ast.iter_child_nodes(node)
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == part), None)
        if node is None:
            return None
    return node


def _normal(source: str) -> str:
    tree = ast.parse(source.strip())
    node = tree.body[0]
    return ast.unparse(node.value if isinstance(node, ast.Expr) else node)


def locate(source: str, b: Break):
    """The (start, end) character offsets in ``source`` of the one node ``b.find`` names; or a
    reason why it cannot be placed."""
    function = _function(ast.parse(source), b.function)
    if function is None:
        return f"no function {b.function}"
    want = _normal(b.find)
    hits = [n for n in ast.walk(function) if isinstance(n, (ast.expr, ast.stmt)) and n is not function
            and ast.unparse(n) == want]
    hits = [n for n in hits if not any(isinstance(h, ast.Expr) and h.value is n for h in hits)]  # a call statement
    if len(hits) != 1:
        return f"{len(hits)} places read {want!r} in {b.function}"
    node = hits[0]
    lines = source.encode().splitlines(keepends=True)
    start = sum(len(x) for x in lines[:node.lineno - 1]) + node.col_offset  # offsets are in UTF-8 bytes
    end = sum(len(x) for x in lines[:node.end_lineno - 1]) + node.end_col_offset
    return start, end


def apply(source: str, b: Break) -> str:
    where = locate(source, b)
    if isinstance(where, str):
        raise LookupError(where)
    data = source.encode()
    broken = (data[:where[0]] + b.replace.encode() + data[where[1]:]).decode()
    compile(broken, b.path, "exec")  # a break is a valid program, or it proves nothing
    return broken


def check(b: Break) -> tuple:
    """(caught, the line to print)."""
    file = ROOT / b.path
    source = file.read_text()
    try:
        broken = apply(source, b)
    except LookupError as e:
        return False, f"STALE   {b.name}: {b.path}: {e}"
    try:
        file.write_text(broken)
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", b.test],
                              cwd=ROOT, capture_output=True, text=True)
    finally:
        file.write_text(source)
    caught = proc.returncode == 1  # tests failed (not: no tests collected, an internal error)
    return caught, f"{'caught' if caught else 'MISSED'}  {b.name}: {b.path} {b.function}: -> {b.test}"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", default="", help="only the breaks whose name contains this")
    args = parser.parse_args(argv)
    chosen = [b for b in BREAKS if args.k in b.name]
    caught = 0
    for b in chosen:
        ok, line = check(b)
        print(line, flush=True)
        caught += ok
    missed = len(chosen) - caught
    print(f"{caught} of {len(chosen)} breaks caught" + (f"; {missed} not" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
