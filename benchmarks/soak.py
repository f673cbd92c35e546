"""Soak: clients keep logging while the server is restarted under them; nothing may be lost.

``python benchmarks/soak.py [--processes 4] [--minutes 2] [--restarts 4] [--quick]``

Starts ``promptrun serve`` (sandbox on) on a temporary database and publishes a template
that runs on the sandbox's OpenAI. Then N client processes (half ``PromptLayer``, half
``AsyncPromptLayer``, each with its own spool folder) alternate ``run()`` and
``log_request()`` until the time is up, while the server is restarted R times, alternately
with SIGTERM (a clean stop) and SIGKILL (a crash), a moment of downtime each. Every call
carries a tag in its metadata, and each client keeps a ledger of what it did. At the end
every client flushes; then the stored records are read back and compared with the ledgers:

- every record a client was handed (a ``run()`` that reached the provider, successful or not,
  and every ``log_request()``) is stored exactly once;
- no client request id and no tag is stored twice; nothing is stored that no client sent.

Prints a summary and exits 1 if anything was lost or duplicated. Not part of ``make test``.
Loopback only: the sandbox stands in for the provider.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

TEMPLATE = (
    Path(__file__).resolve().parent.parent / "runtime/promptrun/examples/templates/greet.json"
)
VARIABLES = {"name": "Ada", "topic": "the analytical engine"}


def _chat(role: str, text: str) -> dict[str, Any]:
    return {"type": "chat", "messages": [{"role": role, "content": [{"type": "text", "text": text}]}]}  # fmt: skip


MESSAGES = {"input": _chat("user", "hi"), "output": _chat("assistant", "hello")}


# -- a client process ------------------------------------------------------------------------
def _entry(tag: str, kind: str, request_id: Any = None, error: str | None = None) -> dict[str, Any]:
    return {"tag": tag, "kind": kind, "request_id": request_id, "error": error}


def _provider_failure(exc: BaseException) -> bool:
    """A run() that failed at the provider: the client logs an ERROR record for it."""
    from promptrun import PromptLayerError

    return not isinstance(exc, PromptLayerError)


def _sync_worker(args: argparse.Namespace, client_args: dict[str, Any]) -> dict[str, Any]:
    from promptrun import PromptLayer

    ledger: list[dict[str, Any]] = []
    client = PromptLayer(**client_args)
    seq = 0
    while time.time() < args.until:
        tag = f"w{args.index}-{seq}"
        if seq % 2 == 0:
            try:
                answer = client.run("greet", input_variables=VARIABLES, metadata={"soak": tag})
                ledger.append(_entry(tag, "run", answer["request_id"]))
            except Exception as exc:
                kind = "run-failed-at-provider" if _provider_failure(exc) else "run-failed"
                ledger.append(_entry(tag, kind, error=type(exc).__name__))
        else:
            now = time.time()
            answer = client.log_request(
                "openai", "gpt-4o-mini", MESSAGES["input"], MESSAGES["output"], now - 0.1, now,
                metadata={"soak": tag},
            )  # fmt: skip
            ledger.append(_entry(tag, "log", (answer or {}).get("id")))
        seq += 1
        time.sleep(args.pause)
    started = time.time()
    flushed = client.flush(timeout=args.flush_timeout)
    flush_s = time.time() - started
    stats = client.stats()
    client.close()
    return {"ledger": ledger, "flushed": flushed, "flush_s": flush_s, "stats": stats}


async def _async_worker(args: argparse.Namespace, client_args: dict[str, Any]) -> dict[str, Any]:
    from promptrun import AsyncPromptLayer

    ledger: list[dict[str, Any]] = []
    client = AsyncPromptLayer(**client_args)
    seq = 0
    while time.time() < args.until:
        tag = f"w{args.index}-{seq}"
        if seq % 2 == 0:
            try:
                answer = await client.run(
                    "greet", input_variables=VARIABLES, metadata={"soak": tag}
                )
                ledger.append(_entry(tag, "run", answer["request_id"]))
            except Exception as exc:
                kind = "run-failed-at-provider" if _provider_failure(exc) else "run-failed"
                ledger.append(_entry(tag, kind, error=type(exc).__name__))
        else:
            now = time.time()
            answer = await client.log_request(
                "openai", "gpt-4o-mini", MESSAGES["input"], MESSAGES["output"], now - 0.1, now,
                metadata={"soak": tag},
            )  # fmt: skip
            ledger.append(_entry(tag, "log", (answer or {}).get("id")))
        seq += 1
        await asyncio.sleep(args.pause)
    started = time.time()
    flushed = await client.flush(timeout=args.flush_timeout)
    flush_s = time.time() - started
    stats = client.stats()
    await client.aclose()
    return {"ledger": ledger, "flushed": flushed, "flush_s": flush_s, "stats": stats}


def worker_main(args: argparse.Namespace) -> None:
    client_args = {
        "api_key": args.api_key,
        "base_url": args.base_url,
        "spool_dir": args.spool,
        "cache_ttl_seconds": 30,
        "http_timeout": 5.0,
        "provider_base_urls": {"openai": args.base_url + "/sandbox/openai/v1"},
    }
    if args.index % 2:
        result = asyncio.run(_async_worker(args, client_args))
    else:
        result = _sync_worker(args, client_args)
    Path(args.out).write_text(json.dumps(result))


# -- the conductor ---------------------------------------------------------------------------
def _call(base_url: str, key: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base_url + path,
        data=data,
        method=method,
        headers={"X-API-KEY": key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read() or b"null")


def _publish(base_url: str, key: str) -> None:
    template = json.loads(TEMPLATE.read_text())
    body = {
        "prompt_template": {"prompt_name": "greet", "tags": ["soak"]},
        "prompt_version": {
            "prompt_template": template["prompt_template"],
            "metadata": template["metadata"],
        },
    }
    _call(base_url, key, "POST", "/rest/prompt-templates", body)


def _stored(base_url: str, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = _call(base_url, key, "GET", f"/promptrun/v1/requests?limit=1000&offset={len(items)}")  # fmt: skip
        items += page["items"]
        if len(page["items"]) < 1000:
            return items


def _restart(proc: Any, number: int, downtime: float) -> str:
    how = "SIGTERM" if number % 2 == 0 else "SIGKILL"
    started = time.time()
    if how == "SIGTERM":
        status = proc.stop()
        how += f" (exit {status})"
    else:
        proc.kill()
    time.sleep(downtime)
    proc.start()
    return f"{how}, back after {time.time() - started:.1f} s"


def _check(results: list[dict[str, Any]], stored: list[dict[str, Any]]) -> dict[str, Any]:
    by_tag: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in stored:
        tag = (item.get("metadata") or {}).get("soak")
        by_tag[tag].append(item)
    kinds: Counter[str] = Counter()
    missing: list[str] = []
    twice: list[str] = []
    wrong_id: list[str] = []
    failed_runs_stored = 0
    sent_tags: set[str] = set()
    for result in results:
        for entry in result["ledger"]:
            tag, kind = entry["tag"], entry["kind"]
            kinds[kind] += 1
            sent_tags.add(tag)
            found = by_tag.get(tag, [])
            if len(found) > 1:
                twice.append(tag)
            if kind in ("run", "log", "run-failed-at-provider"):
                if not found:
                    missing.append(f"{tag} ({kind})")
                elif entry["request_id"] is not None and found[0]["client_request_id"] != entry["request_id"]:  # fmt: skip
                    wrong_id.append(tag)
            elif found:
                failed_runs_stored += 1  # failed before the provider: nothing to log
    client_ids = Counter(i["client_request_id"] for i in stored if i["client_request_id"])
    extra = [tag for tag in by_tag if tag not in sent_tags]
    return {
        "calls": dict(kinds),
        "records_sent": kinds["run"] + kinds["log"] + kinds["run-failed-at-provider"],
        "records_stored": len(stored),
        "missing": missing,
        "stored_twice_by_tag": twice,
        "stored_twice_by_client_request_id": [c for c, n in client_ids.items() if n > 1],
        "stored_with_another_id": wrong_id,
        "stored_but_never_sent": extra,
        "early_failures_stored": failed_runs_stored,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="30 seconds")
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between calls")
    parser.add_argument("--downtime", type=float, default=1.5, help="seconds down per restart")
    parser.add_argument("--flush-timeout", type=float, default=120.0)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for name in ("--index", "--base-url", "--api-key", "--spool", "--until", "--out"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.index, args.until = int(args.index), float(args.until)
        worker_main(args)
        return 0

    from promptrun.testing import ServerProcess

    duration = 30.0 if args.quick else args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="promptrun-soak-") as tmp:
        work = Path(tmp)
        proc = ServerProcess(work / "soak.db")
        proc.start()
        try:
            _publish(proc.base_url, proc.api_key)
            began = time.time()
            until = began + duration
            env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMPTLAYER_", "OPENAI_"))}  # fmt: skip
            env |= {"OPENAI_API_KEY": "sk-soak", "NO_PROXY": "127.0.0.1,localhost"}
            workers = []
            for i in range(args.processes):
                command = [
                    sys.executable, __file__, "--worker", "--index", str(i),
                    "--base-url", proc.base_url, "--api-key", proc.api_key,
                    "--spool", str(work / f"spool-{i}"), "--until", str(until),
                    "--out", str(work / f"worker-{i}.json"), "--pause", str(args.pause),
                    "--flush-timeout", str(args.flush_timeout),
                ]  # fmt: skip
                log = (work / f"worker-{i}.log").open("wb")
                workers.append((subprocess.Popen(command, env=env, stdout=log, stderr=log), log))
            restarts: list[str] = []
            for number in range(args.restarts):
                at = began + duration * (number + 1) / (args.restarts + 1)
                time.sleep(max(0.0, at - time.time()))
                restarts.append(_restart(proc, number, args.downtime))
                print(f"restart {number + 1}: {restarts[-1]}", flush=True)
            codes = []
            for popen, log in workers:
                codes.append(popen.wait(timeout=duration + args.flush_timeout + 120))
                log.close()
            results = []
            for i, code in enumerate(codes):
                out = work / f"worker-{i}.json"
                if code != 0 or not out.exists():
                    print(f"worker {i} failed (exit {code}):")
                    print((work / f"worker-{i}.log").read_text()[-3000:])
                    return 1
                results.append(json.loads(out.read_text()))
            report = _check(results, _stored(proc.base_url, proc.api_key))
        finally:
            proc.stop()
            proc.close()
    stats: Counter[str] = Counter()
    for result in results:
        stats.update(result["stats"])
    flushes = [f"{r['flush_s']:.1f} s{'' if r['flushed'] else ' (NOT flushed)'}" for r in results]
    print(f"\nsoak: {args.processes} client processes, {duration:.0f} s, {len(restarts)} restarts")
    print(f"  calls: {report['calls']}")
    print(f"  records sent: {report['records_sent']}   stored: {report['records_stored']}")
    print(f"  client shipper counters (summed): {dict(stats)}")
    print(f"  final flush per client: {', '.join(flushes)}")
    problems = 0
    for key in (
        "missing",
        "stored_twice_by_tag",
        "stored_twice_by_client_request_id",
        "stored_with_another_id",
        "stored_but_never_sent",
    ):
        found = report[key]
        problems += len(found)
        print(f"  {key.replace('_', ' ')}: {len(found)}" + (f"  e.g. {found[:5]}" if found else ""))
    if report["early_failures_stored"]:
        print(f"  runs that failed before the provider yet were stored: {report['early_failures_stored']}")  # fmt: skip
    ok = problems == 0 and report["records_sent"] == report["records_stored"]
    print("  result: " + ("OK, every record stored exactly once" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
