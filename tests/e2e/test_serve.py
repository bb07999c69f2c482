"""nmt-serve through HTTP: the API contract, dynamic batching (merged = alone), alignments, bad
requests, access control, graceful shutdown and, where Chromium is installed, the page in a real
browser. One server process per module, on a free loopback port."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from ..conftest import bin_path, demo_run_dir
from .helpers import run

httpx = pytest.importorskip("httpx", reason="the serve tests need httpx: pip install -e '.[serve,dev]'")
pytest.importorskip("fastapi", reason="nmt-serve needs the serve extra: pip install -e '.[serve,dev]'")

LINES = ["the pasels rul the muvit fodols.", "", "a dog runs.", "some big kavits did not bomit the zurol."]


class Server:
    def __init__(self, run_dir, *flags, program=None):
        """``program``: the command that is nmt-serve (default: the console script)."""
        self.proc = subprocess.Popen([*(program or [bin_path("nmt-serve")]), str(run_dir), "--port", "0", "--log-level", "info",
                                      *flags], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log = []
        while True:  # the port is in uvicorn's start-up line
            line = self.proc.stderr.readline()
            assert line, "nmt-serve exited:\n" + "".join(self.log)
            self.log.append(line)
            m = re.search(r"running on http://127\.0\.0\.1:(\d+)", line)
            if m:
                break
        self.url = f"http://127.0.0.1:{m.group(1)}"
        self.port = int(m.group(1))
        threading.Thread(target=lambda: self.log.extend(self.proc.stderr), daemon=True).start()

    def post(self, body, **kw):
        return httpx.post(self.url + "/v1/translate", json=body, timeout=120, **kw)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def server(toy_run):
    s = Server(demo_run_dir(toy_run), "--max-request-lines", "16", "--max-chars", "200", "--max-body-bytes", "2048",
               "--max-wait-ms", "100")
    yield s
    assert s.stop() == 0, "".join(s.log)


def test_translate_matches_nmt_translate_jsonl(server, toy_run, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("\n".join(LINES) + "\n")
    per_request = (["--length-penalty", "0.5", "--penalty", "average", "--min-len", "2", "--no-repeat-ngram", "2",
                    "--max-len-a", "1", "--max-len-b", "3"],
                   {"alpha": 0.5, "penalty": "average", "min_len": 2, "no_repeat_ngram": 2, "max_len_a": 1,
                    "max_len_b": 3})
    for flags, body in (([], {}), per_request, (["--nbest", "3", "--alignment"], {"nbest": 3, "alignment": True})):
        out = run(bin_path("nmt-translate"), demo_run_dir(toy_run), "-i", src, "--output-format", "jsonl", *flags).stdout
        offline = [json.loads(line) for line in out.splitlines()]
        response = server.post({"text": LINES, **body})
        assert response.status_code == 200, response.text
        assert response.json()["translations"] == offline
    assert offline[1] == {"translation": "", "score": 0.0, "alignment": "",
                          "nbest": [{"translation": "", "score": 0.0, "alignment": ""}]}  # empty stays empty


def test_model_health_openapi_and_page(server):
    info = httpx.get(server.url + "/v1/model").json()
    assert info["source_language"] == "src" and info["target_language"] == "tgt" and info["step"] == 350
    assert info["parameters"] > 100_000 and info["architecture"]["attention"]["kind"] == "bahdanau"
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    schema = httpx.get(server.url + "/openapi.json").json()
    assert "text" in json.dumps(schema["paths"]["/v1/translate"])
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "<canvas id=\"heatmap\"" in page.text
    assert not re.search(r"(src|href)=\"https?://", page.text)  # self-contained: nothing from the network


def test_concurrent_requests_are_merged_and_translate_as_alone(server):
    alone = [server.post({"text": [line]}).json()["translations"][0] for line in LINES]
    before = httpx.get(server.url + "/health").json()
    results = [None] * 16
    barrier = threading.Barrier(16)

    def client(k):
        barrier.wait()
        results[k] = server.post({"text": [LINES[k % len(LINES)]]}).json()["translations"][0]

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = httpx.get(server.url + "/health").json()
    expected = [alone[k % len(LINES)] for k in range(16)]
    assert [r["translation"] for r in results] == [r["translation"] for r in expected]  # identical text
    for got, want in zip(results, expected):  # scores: the same up to float rounding of other batch shapes
        assert got["score"] == pytest.approx(want["score"], abs=1e-4)
    assert after["requests"] - before["requests"] == 16
    # how requests merge into batches is shown, event by event, in tests/unit/test_batcher.py


def test_per_request_prefixes_match_nmt_translate_and_merge_with_plain_requests(server, toy_run, tmp_path):
    """A target prefix per line (forced, then searched on) and a source tag per request, as
    nmt-translate's --prefix-file and --src-prefix give them; concurrent requests with and without
    prefixes are merged into one search and each gets what it would alone."""
    src, prefixes = tmp_path / "in.txt", tmp_path / "prefixes.txt"
    src.write_text("\n".join(LINES) + "\n")
    forced = ["le", "", "la", ""]
    prefixes.write_text("\n".join(forced) + "\n")
    terms = [["lo"], [], ["una", "dei vupu"], []]
    (tmp_path / "terms.txt").write_text("\n".join("\t".join(t) for t in terms) + "\n")
    for flags, body in ((["--prefix-file", prefixes], {"prefix": forced}),
                        (["--constraints", tmp_path / "terms.txt", "--nbest", "2"], {"constraints": terms, "nbest": 2}),
                        (["--src-prefix", "<x>"], {"src_prefix": "<x>"}),
                        (["--prefix-file", prefixes, "--alignment", "--beam", "1"],
                         {"prefix": forced, "alignment": True, "beam": 1})):
        out = run(bin_path("nmt-translate"), demo_run_dir(toy_run), "-i", src, "--output-format", "jsonl", *flags).stdout
        offline = [json.loads(line) for line in out.splitlines()]
        response = server.post({"text": LINES, **body})
        assert response.status_code == 200, response.text
        got = response.json()["translations"]
        assert [g["translation"] for g in got] == [o["translation"] for o in offline], flags
        for g, o in zip(got, offline):
            assert g["score"] == pytest.approx(o["score"], abs=1e-4)
            assert g.get("alignment") == o.get("alignment")
            assert g.get("constraints_met") == o.get("constraints_met")
            assert [e["translation"] for e in g.get("nbest", [])] == [e["translation"] for e in o.get("nbest", [])]
        if "prefix" in body:
            assert got[0]["translation"].startswith("le ") and got[2]["translation"].startswith("la ")
    plain = server.post({"text": LINES}).json()["translations"]
    constrained = server.post({"text": LINES, "prefix": forced}).json()["translations"]
    results = [None] * 8
    barrier = threading.Barrier(8)

    def client(k):
        barrier.wait()
        body = {"text": LINES, "prefix": forced} if k % 2 else {"text": LINES}
        results[k] = server.post(body).json()["translations"]

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, got in enumerate(results):
        want = constrained if k % 2 else plain
        assert [g["translation"] for g in got] == [w["translation"] for w in want], k


def test_alignments_link_each_noun_to_its_source(toy_run):
    """On the toy task the true alignment of nouns is known from the generator's lexicon."""
    import nmt
    from nmt.data import toy
    lex = toy.make_lexicon(7)
    stems = {s: t[:-1] for s, t, _ in lex.nouns}
    lines = (toy_run / "data" / "toy" / "test.src").read_text().splitlines()[:100]
    model = nmt.load(str(demo_run_dir(toy_run)))
    from nmt.search import decoding_options
    from nmt.translator import Translator
    translator = Translator(model.model, model.tokenizer, decoding_options(5), precision=model.precision)
    ids = translator.encode_lines(lines)
    hyps = translator.translate_ids(ids)
    aligned = translator.alignments(ids, hyps)
    texts = model.tokenizer.decode_tgt([h[0].tokens for h in hyps])
    good = total = 0
    for line, text, a in zip(lines, texts, aligned):
        links = {tuple(map(int, p.split("-"))) for p in a[0]["alignment"].split()}
        target = text.split()
        for i, word in enumerate(line.rstrip(".").split()):
            stem = word[:-1] if word not in stems and word[:-1] in stems else word
            if stem in stems:
                at = [j for j, w in enumerate(target) if w.startswith(stems[stem])]
                if len(at) == 1:
                    total += 1
                    good += (i, at[0]) in links
    assert total > 100 and good / total >= 0.9, (good, total)


BAD = [
    (b"{not json", 400, "invalid JSON"),
    (b'{"text": "one line"}', 422, "text"),
    (b'{"text": [1, 2]}', 422, "text.0"),
    (b'{"lines": ["a"]}', 422, "text: Field required"),
    (b'{"text": ["\xff\xfe"]}', 400, "not valid UTF-8"),
    (b'{"text": []}', 422, "at least one line"),
    (json.dumps({"text": ["a"] * 17}).encode(), 413, "limit of 16"),
    (json.dumps({"text": ["a" * 201]}).encode(), 413, "201 characters"),
    (b'{"text": ["a"], "beam": 17}', 422, "beam: 17"),
    (b'{"text": ["a"], "beam": 0}', 422, "beam: 0"),
    (b'{"text": ["a"], "beam": "5"}', 422, "beam"),
    (b'{"text": ["a"], "nbest": 9, "beam": 4}', 422, "nbest: 9"),
    (b'{"text": ["a"], "penalty": "loud"}', 422, "choose one of gnmt, average, none"),
    (b'{"text": ["a"], "alpha": "x"}', 422, "alpha"),
    (b'{"text": ["a"], "min_len": 5000}', 422, "min length (5000)"),
    (b'{"text": ["a"], "max_len_a": 0, "max_len_b": 0}', 422, "at least one token"),
    (b'{"text": ["a"], "path": "/etc/passwd"}', 422, "path: Extra inputs"),
    (b'{"text": ["a\\nb"]}', 422, "line break"),
    (json.dumps({"text": ["word " * 30] * 16}).encode(), 413, "over 2048 bytes"),
    (b'{"text": ["a", "b"], "prefix": ["x"]}', 422, "prefix: 1 entries for 2 lines"),
    (b'{"text": ["a"], "prefix": "x"}', 422, "prefix"),
    (b'{"text": ["a"], "prefix": ["x\\ny"]}', 422, "prefix[0]"),
    (b'{"text": ["a", "b"], "constraints": [["x"]]}', 422, "constraints: 1 entries for 2 lines"),
    (b'{"text": ["a"], "constraints": ["x"]}', 422, "constraints"),
    (b'{"text": ["a"], "constraints": [["\xe4\xb8\xad"]]}', 422, "no piece for"),
    (b'{"text": ["a"], "src_prefix": "two tags"}', 422, "src_prefix: 'two tags'"),
    (b'{"text": ["a"], "src_prefix": 3}', 422, "src_prefix"),
    (b'{"text": ["a \\ud800 b"]}', 400, "lone surrogate"),
    (b'{"text": ["a"], "prefix": ["\xe4\xb8\xad"]}', 422, "no piece for"),
    (b"[]", 422, "body"),
    (b"null", 422, "body"),
]


@pytest.mark.parametrize("body,status,named", BAD, ids=[f"bad{k}" for k in range(len(BAD))])
def test_bad_requests_get_a_named_4xx_and_the_server_stays_up(server, body, status, named):
    r = httpx.post(server.url + "/v1/translate", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status and named in r.json()["error"], (r.status_code, r.text)
    assert server.post({"text": ["a dog runs."]}).status_code == 200


def test_a_thousand_malformed_requests_then_a_valid_one(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        codes = {client.post("/v1/translate", content=BAD[k % len(BAD)][0],
                             headers={"content-type": "application/json"}).status_code for k in range(1000)}
        assert codes <= {400, 413, 422}
        assert client.post("/v1/translate", json={"text": ["a dog runs."]}).status_code == 200


def test_clients_that_disconnect_mid_request(server):
    for payload in (b'{"text": ["the pas', b'{"text": ["the pasels rul the muvit fodols."], "beam": 16}'):
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(b"POST /v1/translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % (len(payload) + (0 if payload.endswith(b"}") else 50)) + payload)
    assert server.post({"text": LINES}).status_code == 200
    assert not any("Traceback" in line or "Exception in ASGI" in line for line in server.log), "".join(server.log)


def test_api_key_and_cors(toy_run):
    s = Server(demo_run_dir(toy_run), "--api-key", "s3cret", "--cors-origin", "http://example.test")
    try:
        assert s.post({"text": ["a"]}).status_code == 401
        assert "API key" in s.post({"text": ["a"]}).json()["error"]
        assert s.post({"text": ["a"]}, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert s.post({"text": ["a"]}, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert s.post({"text": ["a"]}, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert httpx.get(s.url + "/health").status_code == 200  # liveness needs no key
        r = httpx.get(s.url + "/health", headers={"Origin": "http://example.test"})
        assert r.headers.get("access-control-allow-origin") == "http://example.test"
    finally:
        assert s.stop() == 0
    plain = Server(demo_run_dir(toy_run))
    try:
        r = httpx.get(plain.url + "/health", headers={"Origin": "http://example.test"})
        assert "access-control-allow-origin" not in r.headers  # CORS is off unless asked for
    finally:
        assert plain.stop() == 0


def test_sigterm_finishes_in_flight_requests_then_exits_0(toy_run):
    s = Server(demo_run_dir(toy_run), "--max-request-lines", "64")
    result = {}
    lines = (toy_run / "data" / "toy" / "test.src").read_text().splitlines()[:64]
    worker = threading.Thread(target=lambda: result.setdefault("r", s.post({"text": lines, "beam": 12})))
    worker.start()
    while httpx.get(s.url + "/health").json()["in_flight"] < 1:  # the request is in the server
        assert worker.is_alive()
    assert s.stop() == 0, "".join(s.log)
    worker.join()
    assert result["r"].status_code == 200 and len(result["r"].json()["translations"]) == 64
    with pytest.raises(httpx.ConnectError):
        httpx.get(s.url + "/health")


def chromium() -> str:
    return next((p for p in (os.environ.get("NMT_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium",
                             shutil.which("chromium-browser")) if p and os.path.exists(p)), "")


def test_the_page_in_a_real_browser(server, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (in the dev extra)")
    if not chromium():
        pytest.skip("no Chromium: install Debian's package (apt-get install chromium, as root; .ci/run does) or "
                    "set NMT_CHROMIUM to a Chromium executable")
    expected = server.post({"text": [LINES[0]]}).json()["translations"][0]["translation"]
    forced = server.post({"text": [LINES[0]], "prefix": ["le"]}).json()["translations"][0]["translation"]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            for width in (1000, 380):  # a desktop and a phone-width window
                page = browser.new_page(viewport={"width": width, "height": 800})
                errors = []
                page.on("pageerror", lambda e: errors.append(str(e)))  # noqa: B023
                page.goto(server.url + "/")
                page.wait_for_function("document.activeElement && document.activeElement.id === 'source'")
                page.keyboard.type(LINES[0])  # the source box has the focus: keyboard only
                assert page.input_value("#source") == LINES[0]
                page.keyboard.press("Control+Enter")
                page.wait_for_function("document.getElementById('output').textContent.length > 0")
                assert page.text_content("#output") == expected
                words = len(LINES[0].split()), len(expected.split())
                assert (int(page.get_attribute("#heatmap", "data-cols")),
                        int(page.get_attribute("#heatmap", "data-rows"))) == words
                box = page.locator("#heatmap").bounding_box()
                assert box["width"] > 26 * words[0] and box["height"] > 26 * words[1]
                page.screenshot(path=str(tmp_path / f"page_{width}.png"), full_page=True)
                page.fill("#prefix", "le")  # a target prefix: the translation starts with it
                page.click("#go")
                page.wait_for_function("document.getElementById('output').textContent.startsWith('le ')")
                assert page.text_content("#output") == forced
                page.fill("#prefix", "")
                page.fill("#terms", "dei ; lo vupu")  # phrases every translation must contain
                page.click("#go")
                page.wait_for_function("document.getElementById('output').textContent.includes('lo vupu')")
                assert " dei" in f" {page.text_content('#output')}" and not page.text_content("#error")
                page.fill("#terms", "")
                page.fill("#source", "a dog.")
                page.fill("#beam", "99")
                page.click("#go")
                page.wait_for_function("document.getElementById('error').textContent.length > 0")
                assert "beam: 99" in page.text_content("#error")  # the API's message, readable in the page
                assert not errors, errors
                page.close()
        finally:
            browser.close()
    assert Path(tmp_path / "page_380.png").stat().st_size > 5000
