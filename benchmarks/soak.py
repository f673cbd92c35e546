"""Soak: client processes keep logging through server crashes and their own; nothing may be
lost or stored twice.

``python benchmarks/soak.py [--processes 4] [--minutes 2] [--restarts 4] [--quick]
[--layout shared|own] [--client-kills 2] [--records N --rate R] [--json report.json]``

Starts ``promptrun serve`` (sandbox on) on a temporary database and publishes a template that
runs on the sandbox's OpenAI. Then N client processes (half ``PromptLayer``, half
``AsyncPromptLayer``) log until the time is up: by default they alternate ``run()`` and
``log_request()``; with ``--records`` each sends that many ``log_request()`` at ``--rate`` per
second. Meanwhile the server is restarted R times, alternately with SIGTERM (a clean stop) and
SIGKILL (a crash), a moment of downtime each, and K client processes are killed with SIGKILL
and replaced by new ones.

Layouts: ``shared`` (the default) leaves every client on the default spool folder, which is one
per server and API key, so all processes of a service share it, as real deployments do; ``own``
gives each process a folder of its own (a killed process's replacement takes its folder over).

Every call carries a tag in its metadata, and each client appends what it did to a ledger as it
goes (so a killed client's ledger survives it). At the end every surviving client flushes, a
last client sweeps the spool, and the stored records are compared with the ledgers:

- every record a client was handed (a ``run()`` that reached the provider, successful or not,
  and every ``log_request()``) is stored exactly once;
- nothing is stored twice, nothing that no client sent, except that a client killed mid-call
  may have handed over the one record its ledger had no time to note.

Prints a summary (and writes it as JSON with ``--json``); exits 1 if anything was lost or
duplicated. ``tests/client/test_multiprocess_delivery.py`` runs it with 100,000+ records.
Loopback only: the sandbox stands in for the provider.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, TextIO

TEMPLATE = (
    Path(__file__).resolve().parent.parent / "runtime/promptrun/examples/templates/greet.json"
)
VARIABLES = {"name": "Ada", "topic": "the analytical engine"}
STORED_KINDS = ("run", "log", "run-failed-at-provider")


def _chat(role: str, text: str) -> dict[str, Any]:
    return {"type": "chat", "messages": [{"role": role, "content": [{"type": "text", "text": text}]}]}  # fmt: skip


MESSAGES = {"input": _chat("user", "hi"), "output": _chat("assistant", "hello")}


# -- a client process ------------------------------------------------------------------------
class Ledger:
    """What a client did, one JSON line per call, written through at once (kill -9 safe)."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def note(self, tag: str, kind: str, request_id: Any = None, error: str | None = None) -> None:
        line = {"tag": tag, "kind": kind, "request_id": request_id, "error": error}
        os.write(self._fd, json.dumps(line).encode() + b"\n")


def _provider_failure(exc: BaseException) -> bool:
    """A run() that failed at the provider: the client logs an ERROR record for it."""
    from promptrun import PromptLayerError

    return not isinstance(exc, PromptLayerError)


def _calls(args: argparse.Namespace) -> Any:
    """(tag, what) for each call this worker makes, paced; what is "run" or "log"."""
    seq = 0
    began = time.time()
    while True:
        if args.records:
            if seq >= args.records:
                return
            # Paced in chunks: the rate is per process, the calls go as fast as they can.
            if seq % 100 == 0:
                time.sleep(max(0.0, began + seq / args.rate - time.time()))
        elif time.time() >= args.until:
            return
        what = "log" if args.records or seq % 2 else "run"
        yield f"w{args.index}-{seq}", what
        seq += 1


def _log_args(tag: str) -> tuple[Any, ...]:
    now = time.time()
    return ("openai", "gpt-4o-mini", MESSAGES["input"], MESSAGES["output"], now - 0.1, now)


def _sync_worker(args: argparse.Namespace, client_args: dict[str, Any]) -> dict[str, Any]:
    from promptrun import PromptLayer

    ledger = Ledger(args.ledger)
    client = PromptLayer(**client_args)
    for tag, what in _calls(args):
        if what == "run":
            try:
                answer = client.run("greet", input_variables=VARIABLES, metadata={"soak": tag})
                ledger.note(tag, "run", answer["request_id"])
            except Exception as exc:
                kind = "run-failed-at-provider" if _provider_failure(exc) else "run-failed"
                ledger.note(tag, kind, error=type(exc).__name__)
        else:
            answer = client.log_request(*_log_args(tag), metadata={"soak": tag})
            ledger.note(tag, "log", (answer or {}).get("id"))
        if not args.records:
            time.sleep(args.pause)
    started = time.time()
    flushed = client.flush(timeout=args.flush_timeout)
    flush_s = time.time() - started
    stats = client.stats()
    client.close()
    return {"flushed": flushed, "flush_s": flush_s, "stats": stats}


async def _async_worker(args: argparse.Namespace, client_args: dict[str, Any]) -> dict[str, Any]:
    from promptrun import AsyncPromptLayer

    ledger = Ledger(args.ledger)
    client = AsyncPromptLayer(**client_args)
    for tag, what in _calls(args):
        if what == "run":
            try:
                answer = await client.run(
                    "greet", input_variables=VARIABLES, metadata={"soak": tag}
                )
                ledger.note(tag, "run", answer["request_id"])
            except Exception as exc:
                kind = "run-failed-at-provider" if _provider_failure(exc) else "run-failed"
                ledger.note(tag, kind, error=type(exc).__name__)
        else:
            answer = await client.log_request(*_log_args(tag), metadata={"soak": tag})
            ledger.note(tag, "log", (answer or {}).get("id"))
        # Let the runtime's tasks run between calls (a paced chunk sleeps in the loop).
        await asyncio.sleep(args.pause if not args.records else 0)
    started = time.time()
    flushed = await client.flush(timeout=args.flush_timeout)
    flush_s = time.time() - started
    stats = client.stats()
    await client.aclose()
    return {"flushed": flushed, "flush_s": flush_s, "stats": stats}


def _client_args(args: argparse.Namespace) -> dict[str, Any]:
    client_args: dict[str, Any] = {
        "api_key": args.api_key,
        "base_url": args.base_url,
        "cache_ttl_seconds": 30,
        "http_timeout": 5.0,
        "provider_base_urls": {"openai": args.base_url + "/sandbox/openai/v1"},
    }
    if args.spool:
        client_args["spool_dir"] = args.spool
    return client_args


def worker_main(args: argparse.Namespace) -> None:
    client_args = _client_args(args)
    if args.index % 2:
        result = asyncio.run(_async_worker(args, client_args))
    else:
        result = _sync_worker(args, client_args)
    Path(args.out).write_text(json.dumps(result))


def sweep_main(args: argparse.Namespace) -> None:
    """A last client for the same folder: ships whatever the others left."""
    from promptrun import PromptLayer

    with PromptLayer(**_client_args(args)) as client:
        flushed = client.flush(timeout=args.flush_timeout)
        result = {"flushed": flushed, "stats": client.stats()}
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
    return f"server {how}, back after {time.time() - started:.1f} s"


def _read_ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    # A kill mid-write can tear the last line: it noted nothing then.
    return [json.loads(line) for line in lines if line.strip().endswith(b"}")]


def check(ledgers: dict[int, list[dict[str, Any]]], killed: set[int], stored: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """Compare what the clients noted with what the server stored."""
    by_tag: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in stored:
        by_tag[(item.get("metadata") or {}).get("soak")].append(item)
    kinds: Counter[str] = Counter()
    missing: list[str] = []
    twice: list[str] = []
    wrong_id: list[str] = []
    failed_runs_stored = 0
    sent_tags: set[str] = set()
    in_flight_at_kill = 0
    for index, ledger in ledgers.items():
        for entry in ledger:
            tag, kind = entry["tag"], entry["kind"]
            kinds[kind] += 1
            sent_tags.add(tag)
            found = by_tag.get(tag, [])
            if len(found) > 1:
                twice.append(tag)
            if kind in STORED_KINDS:
                if not found:
                    missing.append(f"{tag} ({kind})")
                elif entry["request_id"] is not None and found[0]["client_request_id"] != entry["request_id"]:  # fmt: skip
                    wrong_id.append(tag)
            elif found:
                failed_runs_stored += 1  # failed before the provider: nothing to log
        if index in killed:
            # The call in flight when the client was killed: handed over, not yet noted.
            seq = int(ledger[-1]["tag"].rsplit("-", 1)[1]) + 1 if ledger else 0
            tag = f"w{index}-{seq}"
            if tag in by_tag:
                sent_tags.add(tag)
                in_flight_at_kill += 1
                if len(by_tag[tag]) > 1:
                    twice.append(tag)
    client_ids = Counter(i["client_request_id"] for i in stored if i["client_request_id"])
    extra = [tag for tag in by_tag if tag not in sent_tags]
    report = {
        "calls": dict(kinds),
        "records_sent": sum(kinds[k] for k in STORED_KINDS),
        "records_in_flight_at_a_kill": in_flight_at_kill,
        "records_stored": len(stored),
        "missing": missing,
        "stored_twice_by_tag": twice,
        "stored_twice_by_client_request_id": [c for c, n in client_ids.items() if n > 1],
        "stored_with_another_id": wrong_id,
        "stored_but_never_sent": extra,
        "early_failures_stored": failed_runs_stored,
    }
    problems = sum(len(report[k]) for k in _PROBLEMS)
    expected = report["records_sent"] + in_flight_at_kill
    report["ok"] = problems == 0 and expected == report["records_stored"]
    return report


_PROBLEMS = (
    "missing",
    "stored_twice_by_tag",
    "stored_twice_by_client_request_id",
    "stored_with_another_id",
    "stored_but_never_sent",
)


class _Fleet:
    """The client processes: start, kill -9, replace, wait."""

    def __init__(self, args: argparse.Namespace, work: Path, base_url: str, key: str, until: float) -> None:  # fmt: skip
        self.args, self.work, self.base_url, self.key, self.until = args, work, base_url, key, until
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMPTLAYER_", "OPENAI_", "PROMPTRUN_"))}  # fmt: skip
        # The default spool folder lives under XDG_CACHE_HOME: keep it inside the work folder.
        env |= {"OPENAI_API_KEY": "sk-soak", "NO_PROXY": "127.0.0.1,localhost"}
        env |= {"XDG_CACHE_HOME": str(work / "cache")}
        self.env = env
        self.procs: dict[int, tuple[subprocess.Popen[bytes], TextIO]] = {}
        self.spools: dict[int, str] = {}
        self.killed: set[int] = set()

    def start(self, index: int, spool: str = "", mode: str = "--worker") -> None:
        if self.args.layout == "own" and not spool:
            spool = str(self.work / f"spool-{index}")
        self.spools[index] = spool
        command = [
            sys.executable, __file__, mode, "--index", str(index),
            "--base-url", self.base_url, "--api-key", self.key, "--spool", spool,
            "--until", str(self.until), "--out", str(self.work / f"worker-{index}.json"),
            "--ledger", str(self.work / f"ledger-{index}.jsonl"), "--pause", str(self.args.pause),
            "--flush-timeout", str(self.args.flush_timeout), "--records", str(self.args.records),
            "--rate", str(self.args.rate),
        ]  # fmt: skip
        log = (self.work / f"worker-{index}.log").open("w")
        popen = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs[index] = (popen, log)

    def kill_and_replace(self, index: int) -> str:
        popen, _ = self.procs[index]
        if popen.poll() is not None:
            return f"client {index} had already finished"
        os.kill(popen.pid, signal.SIGKILL)
        popen.wait()
        self.killed.add(index)
        new = max(self.procs) + 1
        # A restarted service process gets the folder of the one it replaces.
        self.start(new, self.spools[index])
        return f"client {index} killed -9, replaced by client {new}"

    def wait(self, timeout: float) -> list[str]:
        failures = []
        for index, (popen, log) in sorted(self.procs.items()):
            code = popen.wait(timeout=timeout)
            log.close()
            if index not in self.killed and code != 0:
                tail = (self.work / f"worker-{index}.log").read_text()[-3000:]
                failures.append(f"client {index} failed (exit {code}):\n{tail}")
        return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--client-kills", type=int, default=2)
    parser.add_argument("--layout", choices=("shared", "own"), default="shared")
    parser.add_argument("--records", type=int, default=0, help="log_request calls per process")
    parser.add_argument("--rate", type=float, default=2000.0, help="with --records: per second")
    parser.add_argument("--quick", action="store_true", help="30 seconds")
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between calls")
    parser.add_argument("--downtime", type=float, default=1.5, help="seconds down per restart")
    parser.add_argument("--flush-timeout", type=float, default=120.0)
    parser.add_argument("--json", help="write the report here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sweep", action="store_true", help=argparse.SUPPRESS)
    for name in ("--index", "--base-url", "--api-key", "--spool", "--until", "--out", "--ledger"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker or args.sweep:
        args.index, args.until = int(args.index), float(args.until)
        (worker_main if args.worker else sweep_main)(args)
        return 0

    from promptrun.testing import ServerProcess

    if args.records:
        duration = args.records / args.rate
    else:
        duration = 30.0 if args.quick else args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="promptrun-soak-") as tmp:
        work = Path(tmp)
        proc = ServerProcess(work / "soak.db")
        proc.start()
        try:
            _publish(proc.base_url, proc.api_key)
            began = time.time()
            fleet = _Fleet(args, work, proc.base_url, proc.api_key, began + duration)
            for i in range(args.processes):
                fleet.start(i)
            # Server restarts and client kills, spread over the run and interleaved.
            events: list[tuple[float, str, int]] = []
            for n in range(args.restarts):
                events.append((duration * (n + 1) / (args.restarts + 1), "restart", n))
            for n in range(args.client_kills):
                at = duration * (n + 0.6) / (args.client_kills + 0.5)
                events.append((at, "kill", n % args.processes))
            happened: list[str] = []
            for at, what, n in sorted(events):
                time.sleep(max(0.0, began + at - time.time()))
                if what == "restart":
                    happened.append(_restart(proc, n, args.downtime))
                else:
                    happened.append(fleet.kill_and_replace(n))
                print(f"{time.time() - began:5.1f} s  {happened[-1]}", flush=True)
            failures = fleet.wait(timeout=duration + args.flush_timeout + 120)
            for failure in failures:
                print(failure)
            if failures:
                return 1
            sweep = max(fleet.procs) + 1
            fleet.start(sweep, fleet.spools[0], mode="--sweep")
            if fleet.wait(timeout=args.flush_timeout + 60):
                print((work / f"worker-{sweep}.log").read_text()[-3000:])
                return 1
            results = {i: json.loads((work / f"worker-{i}.json").read_text()) for i in fleet.procs if i not in fleet.killed}  # fmt: skip
            ledgers = {i: _read_ledger(work / f"ledger-{i}.jsonl") for i in fleet.procs if i != sweep}  # fmt: skip
            report = check(ledgers, fleet.killed, _stored(proc.base_url, proc.api_key))
        finally:
            proc.stop()
            proc.close()
    return _summarise(args, duration, happened, results, report)


def _summarise(args: argparse.Namespace, duration: float, happened: list[str], results: dict[int, Any], report: dict[str, Any]) -> int:  # fmt: skip
    stats: Counter[str] = Counter()
    for result in results.values():
        stats.update(result["stats"])
    flushes = [f"{r.get('flush_s', 0):.1f} s{'' if r['flushed'] else ' (NOT flushed)'}" for r in results.values()]  # fmt: skip
    all_flushed = all(r["flushed"] for r in results.values())
    report |= {"layout": args.layout, "events": happened, "client_stats": dict(stats)}
    report["ok"] = report["ok"] and all_flushed and stats["dropped"] == 0
    print(f"\nsoak: {args.processes} client processes ({args.layout} spool), {duration:.0f} s, {len(happened)} events")  # fmt: skip
    print(f"  calls: {report['calls']}")
    print(f"  records sent: {report['records_sent']} (+{report['records_in_flight_at_a_kill']} in flight at a kill)   stored: {report['records_stored']}")  # fmt: skip
    print(f"  client shipper counters (summed over the survivors): {dict(stats)}")
    print(f"  final flush per client: {', '.join(flushes)}")
    for key in _PROBLEMS:
        found = report[key]
        print(f"  {key.replace('_', ' ')}: {len(found)}" + (f"  e.g. {found[:5]}" if found else ""))
    if report["early_failures_stored"]:
        print(f"  runs that failed before the provider yet were stored: {report['early_failures_stored']}")  # fmt: skip
    print("  result: " + ("OK, every record stored exactly once" if report["ok"] else "FAILED"))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
