"""``export_bundle``: a checkpoint as two ONNX graphs and what a torch-free runtime needs beside them.

The encoder graph is ``Seq2Seq.encode`` whole (embedding, packed recurrent layers as
``Encoder.padded_forward`` runs them, bridge, attention keys); the step graph is ``Decoder.step``
(embedding, cell, attention, attentional layer, output layer) followed by a log-softmax. Search
stays outside the graphs (``nmt.search``). The step is traced with k = 2 beams per memory row, so it
keeps the search's sharing: a batch of rows x k states over a memory of ``rows`` sentences (k = 1
for greedy decoding).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from typing import Dict, List, Optional, Tuple, cast

import torch
from torch import nn

from ..checkpoint import load_checkpoint, resolve_path
from ..data.spm import BOS, EOS, PAD, UNK
from ..models.decoder import DecoderState, Memory
from ..models.seq2seq import Seq2Seq
from .bundle import ENCODER, MEMORY, STATE_AXIS, STEP, TOPK, BundleError, Manifest, is_bundle, sha256

OPSET = 17
TOLERANCE = 1e-4  # the most an fp32 bundle's log-probabilities may differ from its checkpoint's


class _Encode(nn.Module):
    def __init__(self, model: Seq2Seq, state: List[str]):
        super().__init__()
        self.model, self.state = model, state

    def forward(self, src: torch.Tensor, src_lens: torch.Tensor):
        memory, state = self.model.start(self.model.encoder.padded_forward(src, src_lens), src_lens)
        return (*memory, *(getattr(state, name) for name in self.state))


class _Step(nn.Module):
    def __init__(self, model: Seq2Seq, state: List[str]):
        super().__init__()
        self.model, self.state = model, state

    def forward(self, prev: torch.Tensor, *tensors: torch.Tensor):
        given = dict(zip(self.state, tensors))
        state = DecoderState(given["h"], given.get("c"), given.get("feed"))
        memory = Memory(*tensors[len(self.state):])
        logits, state, weights = self.model.step(prev, state, memory)
        out = (torch.log_softmax(logits.float(), dim=-1), *(getattr(state, name) for name in self.state))
        return out if weights is None else (*out, weights)


def _axes(state: List[str], keys_per_position: bool, weights: bool) -> Tuple[Dict, Dict]:
    """ONNX dynamic axes of the encoder's and the step's inputs and outputs (names as in the graphs)."""
    memory = {"values": {0: "batch", 1: "src_len"}, "keys": {0: "batch", 1: "src_len"} if keys_per_position
              else {0: "batch"}, "mask": {0: "batch", 1: "src_len"}}
    encoder = {"src": {0: "batch", 1: "src_len"}, "src_lens": {0: "batch"}, **memory,
               **{f"{s}_out": {STATE_AXIS[s]: "batch"} for s in state}}
    step = {"prev": {0: "rows"}, **{s: {STATE_AXIS[s]: "rows"} for s in state}, **memory, "logprobs": {0: "rows"},
            **{f"{s}_out": {STATE_AXIS[s]: "rows"} for s in state}}
    if weights:
        step["weights"] = {0: "rows", 1: "src_len"}
    return encoder, step


@contextlib.contextmanager
def _quiet():
    """The tracer's notes (Python warnings on shape checks, and C++ ones on packed sequences printed
    to the process's stderr) silenced; errors still raise."""
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _export(module: nn.Module, args: tuple, path: str, inputs: List[str], outputs: List[str], axes: Dict) -> None:
    with _quiet():
        torch.onnx.export(module, args, path, dynamo=False, opset_version=OPSET, input_names=inputs,
                          output_names=outputs, dynamic_axes=axes, do_constant_folding=True)


def export_graphs(model: Seq2Seq, directory: str) -> Tuple[List[str], bool]:
    """``encoder.onnx`` and ``step.onnx`` of ``model`` (eval mode, fp32, CPU) in ``directory``;
    returns the decoder state's tensor names and whether the step gives attention weights."""
    model = model.float().cpu().eval()
    src = with_factors(model, torch.tensor([[5, 6, 7, 8, EOS], [9, 10, EOS, PAD, PAD]]))  # (rows 2, src_len 5[, 1 + f])
    src_lens = torch.tensor([5, 3])
    with torch.no_grad():
        memory, state = model.encode(src, src_lens)
        names = [n for n in DecoderState._fields if getattr(state, n) is not None]
        beams = torch.arange(2).repeat_interleave(2)  # k = 2 beams per row
        state, _ = model.reorder(state, None, beams)
        _, _, weights = model.step(torch.full((4,), BOS), state, memory)
    enc_axes, step_axes = _axes(names, memory.keys.size(1) == src.size(1), weights is not None)
    # the wrappers in eval mode: the exporter restores each module's mode afterwards, and a wrapper left
    # in training mode would put the model back in training mode (dropout on) once exported
    _export(_Encode(model, names).eval(), (src, src_lens), os.path.join(directory, ENCODER), ["src", "src_lens"],
            [*MEMORY, *(f"{n}_out" for n in names)], enc_axes)
    step_args = (torch.full((4,), BOS), *(getattr(state, n) for n in names), *memory)
    _export(_Step(model, names).eval(), step_args, os.path.join(directory, STEP), ["prev", *names, *MEMORY],
            ["logprobs", *(f"{n}_out" for n in names), *(["weights"] if weights is not None else [])], step_axes)
    return names, weights is not None


def with_factors(model: Seq2Seq, src: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``src`` (batch, src_len) with a column per source factor of ``model``: random values (PAD and
    EOS where ``src`` has them), (batch, src_len, 1 + factors); ``src`` itself without factors."""
    embeds = model.encoder.factor_embeds
    if not len(embeds):
        return src
    sizes = [cast(nn.Embedding, e).num_embeddings for e in embeds]  # each factor's vocabulary
    columns = [torch.where(src <= EOS, src, torch.randint(4, n, tuple(src.shape), generator=generator)) for n in sizes]
    return torch.stack([src, *columns], dim=-1)


def write_topk(directory: str) -> None:
    """``topk.onnx``: one TopK node over the last axis (largest first, sorted), search's selection
    step for the runtime (ONNX Runtime's kernel, 5x faster than numpy's partition on 320 x 8000)."""
    from onnx import TensorProto, helper, save
    node = helper.make_node("TopK", ["x", "k"], ["values", "indices"], axis=-1, largest=1, sorted=1)
    graph = helper.make_graph([node], "topk", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", "n"]),
                                               helper.make_tensor_value_info("k", TensorProto.INT64, [1])],
                              [helper.make_tensor_value_info("values", TensorProto.FLOAT, ["rows", "k"]),
                               helper.make_tensor_value_info("indices", TensorProto.INT64, ["rows", "k"])])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), os.path.join(directory, TOPK))


def verify(model: Seq2Seq, directory: str) -> float:
    """The largest difference between the log-probabilities of ``model`` and of the bundle in
    ``directory`` (loaded as every program loads it) over a probe: four sources of random lengths,
    three beams each sharing their sentence's memory, three greedy steps."""
    import numpy as np

    from ..data.batching import source_tensor
    from .runtime import OnnxModel
    bundle = OnnxModel(directory, threads=1)
    g = torch.Generator().manual_seed(0)
    src, lens = source_tensor([torch.randint(4, model.encoder.embed.num_embeddings, (n,), generator=g).tolist()
                               for n in (9, 4, 1, 6)])
    src = with_factors(model, src, g)
    beams = torch.arange(4).repeat_interleave(3)  # (12,) 3 beams per sentence
    worst = 0.0
    with torch.no_grad():
        memory, state = model.encode(src, lens)
        state, _ = model.reorder(state, None, beams)
        o_memory, o_state = bundle.encode(src.numpy(), lens.numpy())
        o_state, _ = bundle.reorder(o_state, None, beams.numpy())
        prev = torch.full((12,), BOS)
        for _ in range(3):
            logits, state, _ = model.step(prev, state, memory)
            logp, o_state, _ = bundle.step(prev.numpy(), o_state, o_memory)
            ours = torch.log_softmax(logits.float(), dim=-1)
            worst = max(worst, float(np.abs(logp - ours.numpy()).max()))
            prev = ours.argmax(-1)
    return worst


def _quantize(directory: str) -> None:
    """Both graphs' weights to int8 in place (ONNX Runtime's dynamic quantization)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic
    logging.disable(logging.WARNING)  # its advice to pre-process image models
    try:
        for name in (ENCODER, STEP):
            path = os.path.join(directory, name)
            quantize_dynamic(path, path + ".int8", weight_type=QuantType.QInt8)
            os.replace(path + ".int8", path)
    finally:
        logging.disable(logging.NOTSET)


def export_bundle(path: str, out: str, int8: bool = False) -> Manifest:
    """Export the checkpoint (or run directory) ``path`` to the bundle directory ``out``. The bundle
    is written beside ``out`` and moved into place whole; an existing directory is replaced only if
    it is a bundle (anything else there is the user's and is refused)."""
    from importlib.metadata import version

    from ..checkpoint import config_of, load_weights, tokenizer_of
    from ..models import build_model
    from ..models.seq2seq import count_parameters
    ckpt_path = resolve_path(path)
    if os.path.exists(out) and not is_bundle(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise BundleError(f"{out}: exists and is not an exported model; give a new directory")
    ckpt = load_checkpoint(ckpt_path)
    cfg, tok = config_of(ckpt, ckpt_path), tokenizer_of(ckpt)
    model = build_model(cfg.encoder, cfg.attention, cfg.decoder, tok.src_vocab_size, tok.tgt_vocab_size,
                        src_factor_sizes=tok.factor_sizes)
    load_weights(model, ckpt["model"], ckpt_path)
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # as a directory made by mkdir, not mkdtemp's owner-only
    try:
        names, weights = export_graphs(model, tmp)
        if int8:
            _quantize(tmp)
        write_topk(tmp)
        tok.save(tmp)
        manifest = Manifest(
            checkpoint=ckpt_path, checkpoint_sha256=sha256(ckpt_path),
            model={k: ckpt["config"][k] for k in ("encoder", "attention", "decoder")},
            src_vocab_size=tok.src_vocab_size, tgt_vocab_size=tok.tgt_vocab_size, state=names,
            attention_weights=weights, spm=["spm.model"] if tok.joint else ["spm.src.model", "spm.tgt.model"],
            src_lang=cfg.data.src_lang, tgt_lang=cfg.data.tgt_lang, parameters=count_parameters(model),
            src_prefix=cfg.data.src_prefix or None, max_src_len=cfg.data.max_len, opset=OPSET, int8=int8,
            specials={"pad": PAD, "unk": UNK, "bos": BOS, "eos": EOS}, nmt_version=version("nmt"),
            src_factors=[f.to_dict() for f in tok.factors],
            files={name: sha256(os.path.join(tmp, name)) for name in sorted(os.listdir(tmp))})
        manifest.write(tmp)
        manifest.max_logprob_diff = verify(model, tmp)
        if not int8 and manifest.max_logprob_diff > TOLERANCE:
            raise BundleError(f"{out}: not written: the exported graphs' log-probabilities differ from the "
                              f"checkpoint's by {manifest.max_logprob_diff:.1e} (more than {TOLERANCE:g})")
        manifest.write(tmp)
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _replace(new: str, out: str) -> None:
    """Move the finished bundle ``new`` to ``out``; an old bundle there goes only once ``new`` is in place."""
    old: Optional[str] = None
    if os.path.exists(out):
        old = out.rstrip(os.sep) + ".old-" + os.path.basename(new)
        os.replace(out, old)
    os.replace(new, out)
    if old:
        shutil.rmtree(old, ignore_errors=True)
