"""Small model builders and batches shared by the unit tests."""
from nmt.config import AttentionConfig, DecoderConfig, EncoderConfig
from nmt.models import build_model


def tiny_model(cell="gru", enc_cell=None, attention="bahdanau", input_feeding=True, bidirectional=True,
               layers=1, dec_layers=1, dropout=0.0, vocab=30, tie=False, init="uniform", init_scale=0.1,
               bridge="last", attentional_size=12, seed=0):
    import torch
    torch.manual_seed(seed)
    enc = EncoderConfig(cell=enc_cell or cell, embed_size=8, hidden_size=6, num_layers=layers,
                        bidirectional=bidirectional, dropout=dropout)
    out = 12 if bidirectional else 6
    dec = DecoderConfig(cell=cell, embed_size=attentional_size if tie else 8, hidden_size=out,
                        num_layers=dec_layers, dropout=dropout, input_feeding=input_feeding,
                        attentional_size=attentional_size, tie_embeddings=tie, bridge=bridge, init=init,
                        init_scale=init_scale)
    return build_model(enc, AttentionConfig(kind=attention, hidden_size=7), dec, vocab, vocab)


def collate(src, tgt, index=None):
    """A ``Batch`` of id lists, built as training builds them (``make_batch``)."""
    import numpy as np

    from nmt.data.batching import TokenArrays, make_batch
    return make_batch(TokenArrays.from_lists(src), TokenArrays.from_lists(tgt), np.arange(len(src)))


def filter_pairs(src_ids, tgt_ids, src_text, tgt_text, max_len):
    """``keep_pairs`` reported as training reports it."""
    from nmt.data.corpus import keep_pairs, report_filtered
    keep, stats = keep_pairs(src_ids, tgt_ids, src_text, tgt_text, max_len)
    report_filtered("train", stats, max_len)
    return keep, stats


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def toy_corpus_with_bad_pairs(toy_dir, directory):
    """The toy training corpus written to ``directory/c.{src,tgt}`` with a blank pair (line 11) and an
    over-long pair (line 21) that the training cache drops; (prefix, source lines, target lines)."""
    from nmt.data.corpus import read_parallel
    c = read_parallel(str(toy_dir / "train"), "src", "tgt")
    src, tgt = list(c.src), list(c.tgt)
    src[10], tgt[20] = "   ", " ".join(["word"] * 200)
    write_lines(directory / "c.src", src)
    write_lines(directory / "c.tgt", tgt)
    return str(directory / "c"), src, tgt
