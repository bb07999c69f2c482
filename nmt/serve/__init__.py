"""``nmt-serve``: the HTTP API (``app.py``), the dynamic batcher (``batcher.py``) and the web page
(``static/index.html``). Needs the ``serve`` extra (FastAPI, uvicorn)."""
from .app import Settings, create_app  # noqa: F401
