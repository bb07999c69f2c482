"""nmt-serve: a translation server (HTTP JSON API and a web page) with dynamic batching."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys

from . import prepare_process
from .options import add_model_flags, add_search_flags, integer, load_model, real, search_flag_values

API_KEY_ENV = "NMT_API_KEY"


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nmt-serve", description="Serve an nmt checkpoint over HTTP: POST /v1/translate, GET /v1/model, "
        "GET /health, a web page at /, the OpenAPI schema at /docs. Concurrent requests are merged into "
        "batches (dynamic batching).")
    p.add_argument("checkpoints", nargs="+", metavar="CKPT",
                   help="checkpoint file(s) or run directories; several serve as an ensemble")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=integer(0, 65535), default=8000, help="port (default 8000; 0: any free port)")
    s = p.add_argument_group("search (server-side defaults)")
    add_search_flags(s, "beam size when a request names none")
    s.add_argument("--max-beam", type=integer(1), default=16, help="largest beam a request may ask for (default 16)")
    r = p.add_argument_group("speed")
    r.add_argument("--max-batch-sentences", type=integer(1), default=64,
                   help="sentences merged into one search batch (default 64)")
    r.add_argument("--max-wait-ms", type=real(0), default=5.0,
                   help="how long a request waits for others to share its batch (default 5 ms)")
    add_model_flags(r)
    g = p.add_argument_group("limits and access")
    g.add_argument("--max-request-lines", type=integer(1), default=64, help="lines per request (default 64)")
    g.add_argument("--max-chars", type=integer(1), default=1000, help="characters per line (default 1000)")
    g.add_argument("--max-body-bytes", type=integer(64), default=1 << 20, help="request body size (default 1 MiB)")
    g.add_argument("--api-key", default=None,
                   help=f"require this key ('Authorization: Bearer KEY' or 'X-API-Key'); "
                        f"default: ${API_KEY_ENV} if set")
    g.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser pages from ORIGIN to call the API (repeatable; default: none)")
    g.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return p


def build(args: argparse.Namespace):
    """The app for ``args``: the model loaded (quantized, shortlist chosen) and the settings."""
    from ..errors import ConfigError
    from ..serve import Settings, create_app
    model, shortlist, _ = load_model(args)
    if args.beam > args.max_beam:
        raise ConfigError(f"--beam {args.beam} is over --max-beam {args.max_beam}")
    key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV)
    if key is not None and not key.strip():
        raise ConfigError(f"{'--api-key' if args.api_key is not None else '$' + API_KEY_ENV} is empty: an empty key "
                          f"would leave the API open; give a key, or leave it out (and unset ${API_KEY_ENV}) for an "
                          f"open API")
    settings = Settings(
        beam=args.beam, max_beam=args.max_beam,
        search=search_flag_values(args),
        max_batch_sentences=args.max_batch_sentences, max_wait_ms=args.max_wait_ms,
        max_request_lines=args.max_request_lines, max_chars=args.max_chars, max_body_bytes=args.max_body_bytes,
        api_key=key, cors_origins=args.cors_origin,
        shortlist=shortlist)
    return create_app(model, settings)


def _graceful_server_class():
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn re-raises a SIGTERM/SIGINT after its graceful shutdown (exit status -15); a stop
        asked for by a signal is the normal end of a server: exit 0."""

        @contextlib.contextmanager
        def capture_signals(self):
            with super().capture_signals():
                yield
                # uvicorn.Server has no public switch for this: its capture_signals re-raises every
                # signal in _captured_signals on exit (uvicorn 0.29+); emptying the list keeps the
                # shutdown graceful and the status 0. tests/e2e/test_serve.py holds the exit status.
                self._captured_signals.clear()

    return GracefulServer


def main(argv=None) -> None:
    prepare_process()
    args = parse_args(argv)
    from ..errors import NmtError
    try:
        import uvicorn
        _GracefulServer = _graceful_server_class()
    except ImportError:
        sys.exit("nmt-serve: error: the server needs FastAPI and uvicorn: pip install 'nmt[serve]'")
    try:
        app = build(args)
    except NmtError as e:
        sys.exit(f"nmt-serve: error: {e}")
    except KeyboardInterrupt:
        sys.exit(130)
    # uvicorn stops on SIGINT/SIGTERM: it stops accepting, lets in-flight requests finish, then the
    # app's shutdown drains the batcher; the exit status is 0
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=30)
    server = _GracefulServer(config)
    try:
        server.run()
    except OSError as e:
        sys.exit(f"nmt-serve: error: cannot listen on {args.host}:{args.port}: {e.strerror or e}")
    if not server.started:
        sys.exit(1)


if __name__ == "__main__":
    main()
