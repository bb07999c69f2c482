"""Deployment without PyTorch: a trained model as an ONNX bundle, and the ONNX Runtime backend.

    export.py   ``export_bundle``: a checkpoint -> ``encoder.onnx`` + ``step.onnx`` + sentencepiece
                model(s) + ``manifest.json`` (needs torch; ``nmt-export``)
    bundle.py   the bundle's layout and manifest: written by export, checked on load (no torch)
    runtime.py  ``OnnxModel``: the search contract (``encode`` / ``step`` / ``reorder``) over the
                ONNX Runtime sessions and numpy arrays (no torch, no Hydra); ``OnnxEnsemble``

Search is the project's own (``nmt.search``, written over torch and numpy arrays alike), and so is
the text pipeline (``nmt.translator.Translator``): a bundle translates as its checkpoint does.
"""
