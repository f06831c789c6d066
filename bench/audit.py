"""Audit log throughput and the latency it adds to a request.

Runs the real writer (``open_audit_writer``: key ring and checkpoints in a
real SQLite store, segments on the real disk under a temporary folder) with
``fsync = "batch"`` and ``"always"``. ``C`` concurrent requests each append
records one after another, as the gateway's handlers do; every append is
timed from the call to its return (record written and fsynced), which is
what the audit step adds to a request. The "decision" rows seal each record
under a borrower's own key, as the ``accepted`` record does (2,048 borrowers:
each first use makes and stores a key, later ones hit the key ring's cache);
the "plain" rows use the current key (dispatch and CLI records).

    .venv/bin/python bench/audit.py [--records N] [--always-records N] [--dir PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# run as a script, bench/ is on sys.path, where bench/filters.py would shadow the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from config.settings import Settings, settings_from_mapping  # noqa: E402
from gateway.app import open_store  # noqa: E402
from gateway.audit_format import segment_paths  # noqa: E402
from gateway.audit_setup import open_audit_writer  # noqa: E402

SEALED = {
    "to": "+8613812345678",
    "borrower_id": "B-20931",
    "text": "【安心消费金融】尊敬的客户，您的借款已逾期3天，请尽快还款。",
    "body": "【安心消费金融】尊敬的客户，您的借款已逾期3天，请尽快还款。",
    "reference": "loan-77812/notice-3",
    "findings": [],
    "scheduled_at": None,
}
CLEAR = {"client": "acme", "key_id": "k1", "status": "queued", "purpose": "overdue_notice",
         "segments": 1}  # fmt: skip


def settings_for(base: Path, fsync: str) -> Settings:
    def key() -> str:
        return base64.b64encode(secrets.token_bytes(32)).decode()

    return settings_from_mapping(
        {
            "keys": {"data": key(), "index": key(), "audit": key()},
            "store": {"path": "lendsms.db"},
            "audit": {"dir": "audit", "fsync": fsync},
        },
        base_dir=base,
    )


@dataclass(frozen=True)
class Case:
    fsync: str
    records: int
    concurrency: int
    owners: bool  # seal under per-borrower keys (the ``accepted`` record)

    @property
    def name(self) -> str:
        return f"bench-{self.fsync}-{self.concurrency}-{int(self.owners)}"


async def run(base: Path, case: Case) -> dict[str, float]:
    settings = settings_for(base, case.fsync)
    store = open_store(settings)
    await store.open()
    writer = open_audit_writer(settings, store, case.name)
    await writer.start()
    latencies: list[float] = []
    per_task = case.records // case.concurrency

    async def request(task: int) -> None:
        for i in range(per_task):
            owner = f"{task:032x}{i % 8:032x}" if case.owners else None
            started = time.perf_counter()
            await writer.append(
                "accepted", message_id=f"msg_{task}_{i}", clear=CLEAR, sealed=SEALED, owner=owner
            )
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(request(t) for t in range(case.concurrency)))
    elapsed = time.perf_counter() - began
    await writer.close()
    await store.close()
    size = sum(p.stat().st_size for p in segment_paths(settings.audit.dir, case.name))
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "appends": len(latencies),
        "rate": len(latencies) / elapsed,
        "p50": cuts[49] * 1000,
        "p99": cuts[98] * 1000,
        "bytes": size / len(latencies),
    }


HEADER = (
    "| fsync  | records  | conc. | appends | appends/s | p50 added ms | p99 added ms | bytes |",
    "|--------|----------|------:|--------:|----------:|-------------:|-------------:|------:|",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=40_000, help="appends per batch run")
    parser.add_argument("--always-records", type=int, default=2_000, help="per always run")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    args = parser.parse_args()
    cases = [
        Case("batch", args.records, 256, False),
        Case("batch", args.records, 256, True),
        Case("batch", args.records // 4, 16, False),
        Case("always", args.always_records, 256, False),
        Case("always", args.always_records, 256, True),
        Case("always", args.always_records // 4, 16, False),
    ]
    print(f"audit appends: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n")
    print(*HEADER, sep="\n")
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="lendsms-bench-") as tmp:
        for case in cases:
            base = Path(tmp) / case.name
            base.mkdir()
            r = asyncio.run(run(base, case))
            kind = "decision" if case.owners else "plain"
            cells = (
                f"{case.fsync:<6}", f"{kind:<8}", f"{case.concurrency:>5}",
                f"{r['appends']:>7.0f}", f"{r['rate']:>9,.0f}", f"{r['p50']:>12.2f}",
                f"{r['p99']:>12.2f}", f"{r['bytes']:>5.0f}",
            )  # fmt: skip
            print("| " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
