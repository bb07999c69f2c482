"""The HTTP API (FastAPI) over one loaded model (or ensemble) and its dynamic batcher.

``POST /v1/translate``  ``{"text": [lines], "src_prefix"?, "prefix"?: [per line], "constraints"?: [[phrases]
                        per line], "factors"?: {name: [per line]}, "beam"?, "nbest"?,
                        "alignment"?, "attention"?, and any of REQUEST_SEARCH}``
                        -> ``{"translations": [records]}``, each record
                        as ``nmt-translate --output-format jsonl`` writes it (plus ``alignment`` /
                        ``attention``); requests to the same server are merged into batches
``GET /v1/model``       languages, architecture, parameters, checkpoint step and scores
``GET /health``         ``{"status": "ok"}``
``GET /``               the web page; ``/docs`` and ``/openapi.json`` are the framework's

Every refusal is a 4xx with ``{"error": "..."}`` naming the problem; the server never reads or
writes a path named in a request (requests carry text only). With an API key (``Settings.api_key``)
``/v1/*`` needs ``Authorization: Bearer KEY`` (or ``X-API-Key``); ``Settings.cors_origins`` lists the origins a browser
may call it from.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from typing import Optional, Sequence

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ..data.factors import factor_columns
from ..errors import NmtError
from ..guides import check_guides, guides_of
from ..runpaths import RunPaths
from ..search import SearchOptions, decoding_options
from ..search.options import check_min_len
from ..translator import Translator, check_one_line, result_record
from .batcher import Batcher
from .requests import REQUEST_SEARCH, BodyLimit, TranslateRequest, check_per_line, error_response, validation_message


@dataclass
class Settings:
    """Server-side defaults and bounds (``nmt-serve``'s flags)."""
    beam: int = SearchOptions.beam_size
    max_beam: int = 16
    search: dict = field(default_factory=dict)  # other SearchOptions fields: alpha, penalty, max_len_a, ...
    max_batch_sentences: int = 64
    max_wait_ms: float = 5.0
    max_request_lines: int = 64
    max_chars: int = 1000
    max_body_bytes: int = 1 << 20
    api_key: Optional[str] = None
    cors_origins: Sequence[str] = ()
    shortlist: Optional[dict] = None  # the selected lexical shortlist, if any


def model_info(model) -> dict:
    """What ``GET /v1/model`` reports: languages, architecture, size, training step and scores (an
    exported model: what its manifest says); a model with source factors, their values by name."""
    factors = {"source_factors": {f.name: list(f.values) for f in model.tokenizer.factors}} \
        if model.tokenizer.factors else {}
    if model.config is None:
        m = model.model.manifest
        info = {"checkpoint": os.path.basename(m.checkpoint), "exported": True, "source_language": m.src_lang,
                "target_language": m.tgt_lang, "architecture": m.model, "parameters": m.parameters,
                "precision": "int8" if m.int8 else "fp32", **factors}
        if len(model.paths) > 1:
            info["ensemble"] = [os.path.basename(p) for p in model.paths]
        return info
    from ..checkpoint import load_checkpoint
    from ..config import to_dict
    from ..models.seq2seq import count_parameters
    cfg = to_dict(model.config)
    paths = model.paths
    # file names only: the server's directories are nobody's business
    info = {"checkpoint": ", ".join(os.path.basename(p) for p in paths),
            "source_language": cfg["data"]["src_lang"], "target_language": cfg["data"]["tgt_lang"],
            "architecture": {k: cfg[k] for k in ("encoder", "attention", "decoder")},
            "parameters": count_parameters(model.model), "precision": str(model.precision), **factors}
    if len(paths) == 1 and os.path.isfile(paths[0]):
        state = load_checkpoint(paths[0]).get("train_state") or {}
        info["step"] = state.get("step")
        if state.get("best_bleu", -1) >= 0:
            info["valid_bleu"] = {"score": state["best_bleu"], "step": state.get("best_step"),
                                  "decoding": f"train.valid_beam={cfg['train']['valid_beam']}"}
        scores = RunPaths.of_checkpoint(paths[0]).test_scores
        if os.path.isfile(scores):
            with contextlib.suppress(OSError, ValueError), open(scores, encoding="utf-8") as f:
                info["test_scores"] = {k: os.path.basename(v) if k in ("checkpoint", "source", "reference") and
                                       isinstance(v, str) else v for k, v in json.load(f).items()}
    else:
        info["ensemble"] = [os.path.basename(p) for p in paths]
    return info


class Service:
    """The model behind the routes: request checks, encoding, the batcher, and turning hypotheses
    into records (decode, align) on the inference thread, which alone touches the model."""

    KEPT_TRANSLATORS = 32  # the translators kept for the settings and tags used most recently

    def __init__(self, model, settings: Settings):
        self.model, self.settings = model, settings
        # requests choose their settings, so the cache is bounded; lru_cache is safe for the event loop
        # and the inference thread to share
        self.translator_for = functools.lru_cache(maxsize=self.KEPT_TRANSLATORS)(self._translator)
        self.max_src = model.max_src_len
        self._batcher: Optional[Batcher] = None
        self.info: dict = {}

    def start(self) -> None:
        self._batcher = Batcher(self.search, self.settings.max_batch_sentences, self.settings.max_wait_ms)
        self.info = model_info(self.model)

    @property
    def batcher(self) -> Batcher:
        """The batcher, once the app has started (``start``)."""
        if self._batcher is None:
            raise RuntimeError("the service has not started: the app's lifespan starts it")
        return self._batcher

    def tag(self, src_prefix: Optional[str]) -> Optional[str]:
        """The source tag of a request: the model's when it names none; "" for none."""
        return self.model.src_prefix if src_prefix is None else src_prefix or None

    def _translator(self, options, tag: Optional[str]) -> Translator:
        """The translator of ``options`` (``translator_for``, cached); ``tag``: the requests' source tag
        (alignments leave its words out); search does not use it."""
        return Translator(self.model.model, self.model.tokenizer, options, batch_size=self.settings.max_batch_sentences,
                          precision=self.model.precision, shortlist=self.settings.shortlist, src_prefix=tag,
                          max_src_len=self.max_src, warn=lambda m: None)

    def search(self, options, ids, guides=None):  # on the inference thread
        return self.translator_for(options, self.tag(None)).translate_ids(ids, guides=guides)

    def check(self, req: TranslateRequest):
        """The request's ``SearchOptions``, or a 4xx naming what is out of bounds."""
        limits = self.settings
        if not req.text:
            raise HTTPException(422, "text: give at least one line")
        try:
            check_one_line(req.text, "text")
        except NmtError as e:
            raise HTTPException(422, str(e)) from None
        if len(req.text) > limits.max_request_lines:
            raise HTTPException(413, f"text: {len(req.text)} lines, over this server's limit of "
                                     f"{limits.max_request_lines} per request")
        for k, line in enumerate(req.text):
            if len(line) > limits.max_chars:
                raise HTTPException(413, f"text[{k}]: {len(line)} characters, over this server's limit of "
                                         f"{limits.max_chars}")
        if req.src_prefix is not None and any(c.isspace() for c in req.src_prefix):
            raise HTTPException(422, f"src_prefix: {req.src_prefix!r} must be one token without whitespace "
                                     f"(\"\" for none)")
        factors = {f"factors.{name}": [[v] for v in values] for name, values in (req.factors or {}).items()}
        for name, per_line in (("prefix", None if req.prefix is None else [[p] for p in req.prefix]),
                               ("constraints", req.constraints), *factors.items()):
            if per_line is not None:
                check_per_line(name, per_line, len(req.text), limits.max_chars)
        beam = limits.beam if req.beam is None else req.beam
        if not 1 <= beam <= limits.max_beam:
            raise HTTPException(422, f"beam: {beam} is out of range; this server allows 1 to {limits.max_beam}")
        if not 1 <= req.nbest <= beam:
            raise HTTPException(422, f"nbest: {req.nbest} is out of range; 1 to the beam size ({beam})")
        chosen = {name: getattr(req, name) for name in REQUEST_SEARCH if getattr(req, name) is not None}
        try:
            options = decoding_options(beam, nbest=req.nbest, **{**limits.search, **chosen})
            check_min_len(options, self.max_src, "min_len")
        except NmtError as e:
            raise HTTPException(422, str(e)) from None
        return options

    def submit(self, req: TranslateRequest):
        options = self.check(req)
        # tagged with the request's source tag and cut to the model's data.max_len, as nmt-translate does
        prefix = req.prefix if req.prefix is not None and any(p.strip() for p in req.prefix) else None
        constraints = req.constraints if req.constraints is not None and any(req.constraints) else None
        try:
            columns = factor_columns(self.model.tokenizer.factors, req.factors, "factors",
                                     "\"factors\": {name: [one line of values per line of text]}")
            ids = self.translator_for(options, self.tag(req.src_prefix)).encode_lines(
                req.text, 0, columns, [f"factors.{v.name}" for v in self.model.tokenizer.factors],
                lambda name, k: f"{name}[{k}]", "text")
            guides = guides_of(self.model.tokenizer, len(req.text), prefix, constraints, first=0,
                               prefix_where="prefix[{}]", constraint_where="constraints[{}]")
            if guides is not None:
                check_guides(guides, options, self.settings.shortlist is not None)
        except NmtError as e:
            raise HTTPException(422, str(e)) from None

        def finish(hyps):  # on the inference thread: decode, align, shape as nmt-translate's jsonl
            extras = None
            if req.alignment or req.attention:
                extras = self.translator_for(options, self.tag(req.src_prefix)).alignments(ids, hyps,
                                                                                         weights=req.attention)
                if not req.alignment:
                    extras = [[{k: v for k, v in e.items() if k != "alignment"} for e in n] for n in extras]
            texts = [self.model.tokenizer.decode_tgt([h.tokens for h in n]) for n in hyps]
            return [result_record(n, t, req.nbest, extras[k] if extras else None)
                    for k, (n, t) in enumerate(zip(hyps, texts))]

        return self.batcher.submit(ids, options, finish, guides)


async def _parse(request: Request) -> TranslateRequest:
    try:
        body = await request.body()
    except ClientDisconnect:
        raise HTTPException(400, "the client disconnected before sending the whole request body") from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HTTPException(400, f"request body is not valid UTF-8 (byte {e.start})") from None
    try:
        req = TranslateRequest.model_validate(json.loads(text))
    except json.JSONDecodeError as e:
        raise HTTPException(400, f"invalid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except RecursionError:
        raise HTTPException(400, "invalid JSON: nested too deeply") from None
    except ValidationError as e:
        raise HTTPException(422, validation_message(e.errors())) from None
    for name, values in (("text", req.text), ("prefix", req.prefix or []), ("src_prefix", [req.src_prefix or ""]),
                         *((f"factors.{n}", v) for n, v in (req.factors or {}).items())):
        for k, value in enumerate(values):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as e:
                where = name if name == "src_prefix" else f"{name}[{k}]"
                raise HTTPException(400, f"{where}: holds {value[e.start]!r} at character {e.start}, a lone "
                                         f"surrogate (an escape like \\ud800 that is not half of a pair): not text"
                                    ) from None
    return req


def create_app(model, settings: Optional[Settings] = None) -> FastAPI:
    """The app around ``model`` (an ``nmt.api.Model``); the batcher starts with the app and
    finishes its queue when the app shuts down."""
    settings = settings or Settings()
    service = Service(model, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        service.start()
        yield
        service.batcher.close()

    app = FastAPI(title="nmt-serve", version="1", lifespan=lifespan,
                  description="Translation with an nmt model: dynamic batching, n-best lists, alignments.")
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    app.add_exception_handler(StarletteHTTPException,
                              lambda request, exc: error_response(exc.status_code, str(exc.detail)))
    app.add_exception_handler(RequestValidationError,
                              lambda request, exc: error_response(422, validation_message(exc.errors())))

    def authorised(request: Request) -> None:
        if settings.api_key is None:
            return
        given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
            raise HTTPException(401, "missing or wrong API key (send it as 'Authorization: Bearer KEY' or 'X-API-Key')")

    @app.get("/health")
    async def health():
        return {"status": "ok", **service.batcher.stats()}

    @app.get("/v1/model", dependencies=[Depends(authorised)])
    async def info():
        return service.info

    schema = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": TranslateRequest.model_json_schema()}}}}

    @app.post("/v1/translate", dependencies=[Depends(authorised)], openapi_extra=schema)
    async def translate(request: Request):
        with service.batcher.arrival():
            future = service.submit(await _parse(request))
        try:
            return {"translations": await asyncio.wrap_future(future)}
        except NmtError as e:
            raise HTTPException(422, str(e)) from None

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return resources.files("nmt.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    return app
