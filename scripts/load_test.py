"""Load test of nmt-serve on the loopback address: bounded traffic (count- and time-limited, it
stops by itself), C concurrent clients sending Multi30k test lines one per request or in batches,
then a soak; prints sentences/s, p50/p95/p99 latency and the server's RSS, appends the figures to
results/serve_load.jsonl and, with --update-readme, rewrites the README's table from them.

    python scripts/load_test.py --checkpoint runs/m30k --data ../shared/data/multi30k
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from statistics import quantiles

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MARK = ("<!-- serve-load:begin (scripts/load_test.py --update-readme) -->", "<!-- serve-load:end -->")


def read_lines(data: str, n: int):
    from nmt.data.corpus import iter_lines
    path = os.path.join(data, "test_2016_flickr.de.gz")
    return [line for _, line in zip(range(n), iter_lines(path))]


def offline_rate(checkpoint: str, lines, beam: int) -> dict:
    """nmt-translate's own path (Translator, batch 64) on the same lines: sentences/s, and the
    median time of translating one line alone."""
    import torch

    import nmt
    from nmt.search import decoding_options
    from nmt.translator import Translator
    torch.set_num_threads(2)
    model = nmt.load(checkpoint)
    tr = Translator(model.model, model.tokenizer, decoding_options(beam), batch_size=64, precision=model.precision)
    tr.translate(lines[:64])  # warm-up
    start = time.perf_counter()
    tr.translate(lines)
    rate = len(lines) / (time.perf_counter() - start)
    alone = []
    for line in lines[:50]:
        t = time.perf_counter()
        tr.translate([line])
        alone.append(time.perf_counter() - t)
    return {"offline_sentences_per_s": round(rate, 1), "alone_ms_p50": round(1000 * sorted(alone)[25], 1)}


def start_server(checkpoint: str, log: str, *flags) -> tuple:
    """nmt-serve on a free loopback port (its log to ``log``; the port is in uvicorn's start-up line)."""
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "nmt.cli.serve", checkpoint, "--host", "127.0.0.1", "--port",
                                 "0", "--max-request-lines", "64", *flags], stdout=subprocess.DEVNULL, stderr=f)
    deadline = time.time() + 120
    while time.time() < deadline:
        m = re.search(r"running on http://127\.0\.0\.1:(\d+)", Path(log).read_text())
        if m:
            return proc, f"http://127.0.0.1:{m.group(1)}"
        if proc.poll() is not None:
            sys.exit(f"nmt-serve exited: {Path(log).read_text()}")
        time.sleep(0.1)
    proc.kill()
    sys.exit("nmt-serve did not start in 120 s")


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":")) / 1024


async def drive(url: str, lines, clients: int, per_request: int, requests: int, seconds: float) -> dict:
    import httpx
    latencies, sentences = [], 0
    counter = iter(range(requests))
    deadline = time.perf_counter() + seconds

    async def client(k: int):
        nonlocal sentences
        async with httpx.AsyncClient(timeout=300) as c:
            for i in counter:
                if time.perf_counter() > deadline:
                    return
                chunk = [lines[(i * per_request + j) % len(lines)] for j in range(per_request)]
                t = time.perf_counter()
                r = await c.post(url + "/v1/translate", json={"text": chunk})
                latencies.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
                sentences += len(chunk)

    start = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.perf_counter() - start
    q = quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {"clients": clients, "lines_per_request": per_request, "requests": len(latencies),
            "sentences_per_s": round(sentences / elapsed, 1), "p50_ms": round(1000 * q[49], 1),
            "p95_ms": round(1000 * q[94], 1), "p99_ms": round(1000 * q[98], 1)}


def table(record: dict) -> str:
    off = record["offline"]
    lines = [f"Measured {record['time']} on {record['machine']}; `{record['checkpoint_label']}`, "
             f"beam {record['beam']}, server and load generator on the same 2 cores. "
             f"Offline (`nmt-translate`, batch 64): "
             f"{off['offline_sentences_per_s']} sentences/s; one line alone {off['alone_ms_p50']} ms.", "",
             "| clients | lines/request | sentences/s | vs offline | p50 ms | p95 ms | p99 ms |",
             "|---|---|---|---|---|---|---|"]
    for r in record["runs"]:
        share = r["sentences_per_s"] / off["offline_sentences_per_s"]
        lines.append(f"| {r['clients']} | {r['lines_per_request']} | {r['sentences_per_s']} | {share:.2f} | "
                     f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} |")
    soak = record.get("soak")
    if soak:
        lines += ["", f"Soak: {soak['requests']:,} one-line requests from 16 clients at {soak['sentences_per_s']} "
                      f"sentences/s; server RSS {soak['rss_before_mb']:.0f} MB before, {soak['rss_after_mb']:.0f} MB "
                      f"after ({soak['rss_after_mb'] - soak['rss_before_mb']:+.0f} MB), "
                      f"peak {soak['peak_rss_mb']:.0f} MB."]
    return "\n".join(lines)


def update_readme(text: str) -> None:
    readme = ROOT / "README.md"
    content = readme.read_text()
    begin, end = MARK
    if begin not in content:
        sys.exit(f"README.md has no {begin} marker")
    head, rest = content.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{begin}\n{text}\n{end}{tail}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="checkpoint or run directory to serve")
    p.add_argument("--label", default="multi30k_de_en", help="what the checkpoint is, for the table")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--clients", default="1,4,16,64")
    p.add_argument("--lines-per-request", default="1,16")
    p.add_argument("--requests", type=int, default=600, help="requests per setting (count limit)")
    p.add_argument("--seconds", type=float, default=60, help="time limit per setting")
    p.add_argument("--soak", type=int, default=20000, help="one-line requests in the soak (0: skip)")
    p.add_argument("--server-args", default="", help="more nmt-serve flags, e.g. '--threads 1 --max-wait-ms 10'")
    p.add_argument("--results", default=str(ROOT / "results" / "serve_load.jsonl"))
    p.add_argument("--update-readme", action="store_true", help="rewrite the README's table from this run")
    args = p.parse_args()
    lines = [line for line in read_lines(args.data, 1000) if line.strip()]
    offline = offline_rate(args.checkpoint, lines, args.beam)
    print(json.dumps({"offline": offline}), flush=True)
    import tempfile
    log = os.path.join(tempfile.mkdtemp(prefix="nmt-load-"), "serve.log")
    proc, url = start_server(args.checkpoint, log, "--beam", str(args.beam), *args.server_args.split())
    runs, soak = [], None
    try:
        asyncio.run(drive(url, lines, 4, 1, 40, 30))  # warm-up
        for per_request in (int(x) for x in args.lines_per_request.split(",")):
            for clients in (int(x) for x in args.clients.split(",")):
                n = max(clients * 4, args.requests // per_request)
                runs.append(asyncio.run(drive(url, lines, clients, per_request, n, args.seconds)))
                print(json.dumps(runs[-1]), flush=True)
        if args.soak:
            before = rss_mb(proc.pid)
            result = asyncio.run(drive(url, lines, 16, 1, args.soak, 3600))
            soak = {"requests": result["requests"], "sentences_per_s": result["sentences_per_s"],
                    "rss_before_mb": before, "rss_after_mb": rss_mb(proc.pid), "peak_rss_mb": rss_mb(proc.pid, "VmHWM")}
            print(json.dumps({"soak": soak}), flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    record = {"time": time.strftime("%Y-%m-%d"), "server_args": args.server_args,
              "machine": f"{os.cpu_count()}-vCPU {cpu}", "beam": args.beam,
              "checkpoint_label": args.label, "offline": offline, "runs": runs, "soak": soak, "server_exit": code}
    os.makedirs(os.path.dirname(args.results), exist_ok=True)
    with open(args.results, "a") as f:
        f.write(json.dumps(record) + "\n")
    print(table(record))
    if args.update_readme:
        update_readme(table(record))


if __name__ == "__main__":
    main()
