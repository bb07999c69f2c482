"""scripts/benchmark.py's quality table: one row per labelled budget run, then each run's mean and
spread over seeds (runs that differ only in train.seed, on one kind of machine, for one budget)."""
import importlib.util
import json

from ..conftest import ROOT


def _benchmark():
    spec = importlib.util.spec_from_file_location("benchmark", ROOT / "scripts" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(label, overrides, bleu, flags=("avx2", "avx512f"), minutes=18.8, scored="best.pt"):
    return {"label": label, "overrides": overrides, "time": "2026-12-01 10:00:00", "peak_gemm_gflops": 180.0,
            "cpu": {"model": "AMD EPYC", "flags": list(flags)}, "decode_split": "test_2016_flickr",
            "budget": {"minutes": minutes, "updates": 4000, "epochs": 9, "best_valid_bleu": 37.0,
                       "last_valid_bleu": 37.5, "scored": scored},
            "decode": {"beam5": {"bleu": bleu}, "greedy": {"bleu": bleu - 1.5}}}


def test_the_quality_table_groups_seeds_of_one_recipe(tmp_path):
    records = [_record("cosine", ["optim.scheduler=cosine"], 38.0),
               _record("cosine", ["optim.scheduler=cosine", "train.seed=2"], 39.0, scored="last.pt"),
               _record("cosine", ["optim.scheduler=cosine"], 34.0, flags=("avx2",)),  # another machine
               {"experiment": "bench_reference", "train": {}}]  # a speed record: not in this table
    ddp = _record("cosine in 2 processes", ["optim.scheduler=cosine"], 40.0)
    ddp["budget"]["processes"] = 2  # the same overrides, trained by torchrun (--nproc 2): a group of its own
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*records, ddp]))
    lines = _benchmark().quality_table(str(path)).splitlines()
    rows = [line for line in lines if line.startswith("| cosine")]
    assert len(rows) == 4 + 3
    assert "| 2 | AVX-512: 180 GFLOP/s, 2026-12-01 | 18.8 | 4,000 (9) | 37.50 (last.pt) | 39.00 | 37.50 |" in rows[1]
    assert rows[4] == "| cosine (AVX-512, 19 min) | 1, 2 | 38.50 (38.00 - 39.00) |"
    assert rows[5] == "| cosine (AVX2, 19 min) | 1 | 34.00 (34.00 - 34.00) |"
    assert rows[6] == "| cosine in 2 processes (AVX-512, 19 min) | 1 | 40.00 (40.00 - 40.00) |"


def _peer():
    spec = importlib.util.spec_from_file_location("peer_opennmt", ROOT / "scripts" / "peer_opennmt.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_peer_gets_the_recipes_settings_in_its_own_names():
    """scripts/peer_opennmt.py reads OpenNMT-py's settings from the nmt experiment (one owner): the
    multi30k_de_en recipe as issue 29 ran the peer; a config the peer cannot run as nmt does is refused."""
    import pytest

    from ..conftest import compose
    peer = _peer()
    s = peer.peer_settings(compose(["experiment=multi30k_de_en"]))
    assert {k: s[k] for k in ("rnn_type", "word_vec_size", "enc_hid_size", "dec_hid_size", "learning_rate",
                              "batch_size", "average_decay", "label_smoothing", "max_grad_norm", "param_init")} == {
        "rnn_type": "GRU", "word_vec_size": 256, "enc_hid_size": 512, "dec_hid_size": 512, "learning_rate": 2e-3,
        "batch_size": 1200, "average_decay": 0.001, "label_smoothing": 0.1, "max_grad_norm": 1.0, "param_init": 0.1}
    assert s["dropout"] == [0.3] and s["input_feed"] == 0 and s["global_attention"] == "general"
    with pytest.raises(SystemExit, match="decoder.tie_embeddings=false"):
        peer.peer_settings(compose(["experiment=multi30k_de_en", "decoder.tie_embeddings=true",
                                    "decoder.attentional_size=256"]))


def test_the_roofline_classes_ops_and_its_table_shares_the_time_and_the_gap(tmp_path):
    roofline = _benchmark().roofline
    assert roofline.op_class("aten::addmm") == "GEMM" and roofline.op_class("aten::mkldnn_rnn_layer").startswith("rec")
    assert roofline.op_class("aten::_log_softmax") == "softmax, log-softmax, exp, log"
    assert roofline.op_class("aten::cat") == "copies, layout, indexing"
    assert roofline.op_class("Optimizer.step#Adam.step") == "optimizer"
    assert roofline.op_class("aten::sigmoid") == "elementwise" and roofline.op_class("MmBackward0") == "autograd nodes"
    r = {"ms": 100.0, "limit_ms": 40.0, "gflop": 6.0,
         "classes": {"GEMM": 60.0, "elementwise": 25.0, roofline.REST: 15.0}}
    rows = roofline.table("an update", r)
    gemm = next(row for row in rows if row.startswith("| GEMM"))
    assert "100 GFLOP/s" in gemm and "| 60% | 33% |" in gemm  # 6 GFLOP in 60 ms; (60 - 40) of the 60 ms gap
    assert any(row.startswith("| elementwise | 25.00 | 25% | 42% |") for row in rows)
    assert "40% of the limit" in rows[0]
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"experiment": "bench_reference", "time": "2026-12-06 20:00:00",
                                "peak_gemm_gflops": 150.0, "train": {"roofline": r}}) + "\n")
    assert "a training update (bench_reference, 2026-12-06" in _benchmark().roofline_table(str(path))


def test_roofline_names_match_whole_ops_not_prefixes():
    op_class = _benchmark().roofline.op_class
    assert op_class("aten::topk") == "reductions, top-k, sort"  # not aten::to
    assert op_class("aten::tanh") == "elementwise" and op_class("aten::tanh_") == "elementwise"  # not aten::t
    assert op_class("aten::index_select") == "copies, layout, indexing" and op_class("aten::t") == op_class("aten::copy_")
    assert op_class("aten::_fused_dropout") == "dropout, random"


def test_the_deployment_table_has_a_row_per_backend_with_its_share_of_the_limit(tmp_path):
    spec = importlib.util.spec_from_file_location("deploy_benchmark", ROOT / "scripts" / "deploy_benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    row = {"beam5": {"sentences_per_s": 100.0, "share_of_limit": 0.5}, "greedy": {"sentences_per_s": 400.0,
                                                                                 "share_of_limit": 0.25},
           "bleu": 41.8, "identical_lines": 990, "latency": {"ms_median": 40.0, "ms_p90": 50.0},
           "process_seconds": 0.5, "peak_rss_mb": 150.4}
    record = {"time": "2026-12-06 22:22:31", "checkpoint": "/x/run/checkpoints/best.pt", "split": "test_2016_flickr",
              "cpu": {"model": "AMD EPYC"}, "threads": 2, "peak_gemm_gflops": 150.0, "lines": 1000,
              "gflop_per_sentence_beam5": 0.92, "gflop_per_sentence_greedy": 0.2,
              "backends": {name: row for name in module.BACKENDS}}
    path = tmp_path / "deploy.jsonl"
    path.write_text(json.dumps({"old": True}) + "\n" + json.dumps(record) + "\n")  # the latest record counts
    lines = module.table(str(path)).splitlines()
    assert "run, test_2016_flickr (1000 lines)" in lines[0] and "peak fp32 GEMM 150.0 GFLOP/s" in lines[0]
    rows = [line for line in lines if line.startswith("| ") and "backend" not in line]
    assert [r.split(" | ")[0][2:] for r in rows] == list(module.BACKENDS)
    assert rows[-1] == ("| ONNX Runtime int8 | 100.0 (50%) | 400.0 (25%) | 40.0 (50.0) | 41.8 | 990 / 1000 | "
                        "0.5 s, 150 MB |")


def test_the_constraints_table_gives_each_beam_with_and_without_and_the_speed_ratio(tmp_path):
    spec = importlib.util.spec_from_file_location("constraints_benchmark", ROOT / "scripts" / "constraints_benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = [{"beam": b, "constrained": c, "bleu": 40.0 + c, "term_share": 0.995 if c else 0.01, "unmet_lines": int(c),
             "sentences_per_s": 50.0 if c else 100.0} for b in (5, 10) for c in (False, True)]
    record = {"time": "2026-12-07 01:00:00", "checkpoint": "/x/m30k/checkpoints/best.pt", "split": "test_2016_flickr",
              "cpu": {"model": "AMD EPYC"}, "threads": 2, "peak_gemm_gflops": 150.0, "lines": 1000, "terms": 1180,
              "lines_with_terms": 864, "rows": rows}
    path = tmp_path / "constraints.jsonl"
    path.write_text(json.dumps(record) + "\n")
    lines = module.table(str(path)).splitlines()
    assert "m30k, test_2016_flickr (1000 lines): 1180 reference terms on 864 lines" in lines[0]
    assert lines[-1] == "| 10 | yes | 41.0 | 99.5% | 1 | 50.0 (50.0-50.0) | 0.50x |"
    assert module.holds("A man rides a bicycle.", "bicycle") and not module.holds("Two bicycles.", "bicycle")
    terms = module.draw_terms(["A black dog runs fast."], ["A dog runs."])
    assert terms[0] and all(t.split()[0] in ("black", "fast") for t in terms[0])


def test_each_run_is_held_to_the_peak_of_the_precision_it_computes_in(monkeypatch):
    bm = _benchmark()
    measured = []

    def fake_peak(n=2048, repeats=5, dtype=None):  # noqa: ARG001
        measured.append(dtype)
        return {"torch.float32": 100.0, "torch.bfloat16": 300.0, "torch.float16": 50.0}[str(dtype)]

    monkeypatch.setattr(bm, "peak_gemm_gflops", fake_peak)
    for native, auto_rate in ((False, 100.0), (True, 300.0)):
        monkeypatch.setattr(bm, "resolve_precision", lambda p, device, native=native: p if str(p) != "auto" else
                            (bm.Precision.bf16 if native else bm.Precision.fp32))
        peaks = bm.Peaks()
        assert peaks("auto") == auto_rate and peaks("fp32") == 100.0 and peaks("bf16") == 300.0
        assert peaks.record() == {"peak_gemm_gflops": 100.0, "peak_gemm_gflops_bf16": 300.0, "bf16_native": native}
    assert len(measured) == 4  # each precision measured once per Peaks, not once per question
    rates = iter([90.0, 120.0, 100.0])
    monkeypatch.setattr(bm, "peak_gemm_gflops", lambda n=2048, repeats=5, dtype=None: next(rates))
    peaks = bm.Peaks()
    assert peaks("fp32") == 90.0 and peaks.again("fp32") == 120.0 and peaks.again("fp32") == 120.0  # the best kept


def test_the_speed_table_names_both_peaks_and_each_rows_precision(tmp_path):
    train = {"sentences_per_update": 64, "parameters": 11.2e6, "sentences_per_s": 120.0, "limit_sentences_per_s": 200.0,
             "share_of_limit": 0.6, "gflop_per_sentence": 0.61, "limit_precision": "fp32"}
    base = {"time": "2026-12-07 10:00:00", "cpu": {"model": "AMD EPYC", "flags": ["avx2"]}, "threads": 2,
            "torch": "2.13.0", "peak_gemm_gflops": 150.0, "peak_gemm_gflops_bf16": 30.0, "bf16_native": False,
            "overrides": []}
    roof = {"ms": 100.0, "limit_ms": 50.0, "gflop": 7.5, "peak_gflops": 150.0, "classes": {"GEMM": 60.0}}
    latency = {"words": 15, "sentences": 40, "ms_median": 120.0, "ms_p90": 130.0, "mflop_per_sentence": 700.0,
               "limit_ms": 5.0, "share_of_limit": 0.04, "steps_per_sentence": 17.0, "bandwidth_gbs": 20.0,
               "bandwidth_bound_ms": 24.0, "times_bandwidth_bound": 5.0}
    decode = {"beam5": {"sentences_per_s": 90.0, "limit_sentences_per_s": 300.0, "share_of_limit": 0.3,
                        "gflop_per_sentence": 0.6, "bleu": 41.0}}
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps({**base, "experiment": e, "train": {**train, "roofline": roof}}) + "\n"
                            for e in ("bench_reference", "multi30k_de_en"))
                    + json.dumps({**base, "experiment": "multi30k_de_en", "checkpoint": "best.pt", "decode": decode,
                                  "latency": latency}) + "\n")
    bm = _benchmark()
    table = bm.speed_table(str(path))
    assert "peak fp32 GEMM measured at 150.0 GFLOP/s, bf16 at 30.0 (emulated" in table
    assert table.count("M parameters, fp32) | 120.0 | 200.0 | 60% |") == 2
    assert "bandwidth bound 24.0 ms (17 steps at 20 GB/s): 5.0x it | 120.0 ms |" in table
    roofs = bm.roofline_table(str(path))  # the latest update of each experiment
    assert "a training update (bench_reference" in roofs and "a training update (multi30k_de_en" in roofs


def test_the_bandwidth_bound_counts_a_tied_output_layer_and_skips_the_embedding_tables():
    from .helpers import tiny_model
    bm = _benchmark()
    for tied in (False, True):
        model = tiny_model(tie=tied)
        d = model.decoder
        encoder, step = bm.weight_bytes(model)
        per_step = sum(p.numel() * 4 for n, p in d.named_parameters() if not n.startswith("embed."))
        assert step == per_step + (d.output.weight.numel() * 4 if tied else 0)  # tied: named embed.weight
        assert encoder == 4 * (sum(p.numel() for n, p in model.encoder.named_parameters() if "embed" not in n)
                               + sum(p.numel() for p in model.bridge.parameters()))
