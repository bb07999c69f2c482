"""Each listed test catches a deliberate break: apply one small change to the package, run the test
that should catch it, expect a failure, restore the file. Prints one line per break.

    python scripts/mutation_check.py
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (file, text, its deliberate break, the test that must now fail)
BREAKS = [
    ("nmt/training/update.py", "finite = math.isfinite(grad_norm) and math.isfinite(loss_sum)",
     "finite = True", "tests/unit/test_loop.py::test_train_step_skips_non_finite_updates"),
    ("nmt/search/options.py", "        if self.beam_size < 1:\n",
     "        if False:\n", "tests/unit/test_search.py::test_invalid_options_fail_before_decoding"),
    ("nmt/search/beam.py", "    if kind is Penalty.gnmt:\n        return ((5.0 + length) / 6.0) ** alpha",
     "    if kind is Penalty.gnmt:\n        return 1.0", "tests/unit/test_search.py"),
    ("nmt/translator.py", "                for i, hyps in zip(idx, self._search(src, src_lens)):",
     "                for i, hyps in zip(sorted(idx), self._search(src, src_lens)):",
     "tests/unit/test_translator.py::test_blank_lines_and_input_order_and_batch_size_invariance"),
    ("nmt/runtime.py", "    if free >= threads - 0.5:", "    if free >= threads - 1.5:",
     "tests/unit/test_threads.py::test_check_busy_reports_by_the_measured_load"),
    ("nmt/precision.py", "    return Precision.bf16 if native else Precision.fp32", "    return Precision.fp32",
     "tests/unit/test_loss.py::test_precision_names"),
    ("nmt/models/attention.py", "        q = self.query_proj(query)  # (batch, tgt_len, hidden)",
     "        q = self.query_proj(query)  # (batch, tgt_len, hidden)\n        keys = self.key_proj(values)",
     "tests/unit/test_attention.py::test_bahdanau_keys_are_projected_once_per_batch"),
    ("nmt/config.py", "    errors.append(teacher_forcing_k_rule(tf.schedule, tf.k))\n", "",
     "tests/unit/test_config.py"),
]


def main() -> int:
    failures = 0
    for path, text, broken, test in BREAKS:
        file = ROOT / path
        source = file.read_text()
        if source.count(text) != 1:
            print(f"STALE  {path}: the text to break is not there once")
            failures += 1
            continue
        try:
            file.write_text(source.replace(text, broken))
            proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test],
                                  cwd=ROOT, capture_output=True, text=True)
        finally:
            file.write_text(source)
        caught = proc.returncode == 1
        failures += not caught
        change = (broken.strip() or "(line deleted)").splitlines()[-1][:60]
        print(f"{'caught' if caught else 'MISSED'}  {path}: {change!r} -> {test}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
