"""What a translation request may hold: its body (``TranslateRequest``), the checks of its
per-line fields, the body-size limit, and the shape of every refusal (``{"error": "..."}``)."""
from __future__ import annotations

from typing import Dict, List, Optional

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ..guides import CONSTRAINTS, FACTORS, PREFIX
from ..search import SearchOptions

# The search settings a request may choose besides beam and nbest, by their ``SearchOptions`` names
# (absent or null: this server's, from its flags); sampling stays with nmt-translate and the API.
REQUEST_SEARCH = ("alpha", "penalty", "coverage_penalty", "max_len_a", "max_len_b", "min_len", "no_repeat_ngram")


class TranslateRequest(BaseModel):
    """A batch of lines to translate; empty lines stay empty."""
    model_config = ConfigDict(extra="forbid", strict=True)
    text: List[str]
    src_prefix: Optional[str] = None  # the tag before every line (default: the model's; "" for none)
    prefix: Optional[List[str]] = Field(None, description=f"per line, {PREFIX.help}")
    constraints: Optional[List[List[str]]] = Field(None, description=f"per line, {CONSTRAINTS.help}")
    factors: Optional[Dict[str, List[str]]] = Field(None, description=f"{{name: per line, its values}}: {FACTORS.help}")
    beam: Optional[int] = None
    nbest: int = SearchOptions.nbest
    alignment: bool = False
    attention: bool = False
    alpha: Optional[float] = None  # REQUEST_SEARCH: checked by SearchOptions, as everywhere
    penalty: Optional[str] = None
    coverage_penalty: Optional[float] = None
    max_len_a: Optional[float] = None
    max_len_b: Optional[int] = None
    min_len: Optional[int] = None
    no_repeat_ngram: Optional[int] = None


def check_per_line(name: str, per_line: List[List[str]], lines: int, max_chars: int) -> None:
    """A request field with an entry per line of text (a prefix, a list of phrases): as many entries
    as lines, each within ``max_chars`` characters together and without line breaks."""
    if len(per_line) != lines:
        raise HTTPException(422, f"{name}: {len(per_line)} entries for {lines} lines of text; give one per line")
    for k, texts in enumerate(per_line):
        if sum(len(t) for t in texts) > max_chars or any("\n" in t or "\r" in t for t in texts):
            raise HTTPException(422, f"{name}[{k}]: over {max_chars} characters or holds a line break")


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def validation_message(errors) -> str:
    parts = []
    for e in errors:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "; ".join(parts[:5]) + (f" (and {len(parts) - 5} more)" if len(parts) > 5 else "")


class BodyLimit:
    """Refuse a request body over ``limit`` bytes (413), by its Content-Length or while it streams."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await error_response(413, f"request body over {self.limit} bytes").__call__(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, f"request body over {self.limit} bytes")
            return message

        await self.app(scope, limited, send)
