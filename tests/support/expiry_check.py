"""Backups whose messages max_age expires between the backup and the restore, against real
servers (issue #9: the limits the server enforces at load, for archives).

Usage: expiry_check.py --server215 BIN --server29 BIN --out DIR

For each release (2.15.1: `nats stream backup` writes V2; 2.9.10: V1), one stream AGE with
max_age 10 s: batch A (10 messages) at t0, batch B (5 messages) at t0+6 s, then a snapshot
(DIR/<rel>/bk: backup.json + stream.tar.s2) and, once the server stopped, a tarball of the
stream dir (DIR/<rel>/AGE.tgz). At t0+11 s (A older than max_age, B not) the backup is restored
into a fresh server (the restore API) and the tarball is extracted into another fresh store
(tar into jetstream/$G/streams/) and that server started; 1.5 s later STREAM.INFO of each is
recorded with the time of the observation. On 2.15.1 a second stream TTL (allow_msg_ttl) gets
6 messages at t0+6 s, every other one with `Nats-TTL: 3s`, and goes through the same steps
(DIR/2.15.1/ttl/bk, DIR/2.15.1/ttl/TTL.tgz). Prints JSON:
{"<rel>": {"v": {"at": RFC3339, "state": {...}}, "tgz": {...}, "ttl": {"v": ..., "tgz": ...}}}.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import natsbox as nb  # noqa: E402

MAX_AGE_S = 10


def rfc3339(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )


async def make(binary: str, out: Path, t0: float, ttl: bool) -> None:
    with nb.NatsServer(binary, out / "store") as s:
        nc = await nb.connect(s.url)
        await nb.wait_jetstream(nc)
        await nb.create_stream(
            nc,
            {"name": "AGE", "subjects": ["age.>"], "storage": "file",
             "max_age": MAX_AGE_S * 1_000_000_000},
        )
        if ttl:
            await nb.create_stream(
                nc,
                {"name": "TTL", "subjects": ["ttl.>"], "storage": "file",
                 "allow_msg_ttl": True},
            )
        for i in range(10):
            await nb.publish(nc, f"age.{i % 3}", b"old" * 5)
        await asyncio.sleep(max(0.0, t0 + 6 - time.time()))
        for i in range(5):
            await nb.publish(nc, f"age.{i % 3}", b"new" * 5)
        await nb.snapshot_stream(nc, "AGE", out / "bk")
        if ttl:
            for i in range(6):
                await nb.publish(
                    nc, f"ttl.{i}", b"x", headers={"Nats-TTL": "3s"} if i % 2 == 0 else None
                )
            await nb.snapshot_stream(nc, "TTL", out / "ttl/bk")
        await nc.close()
    for name, dst in [("AGE", out / "AGE.tgz")] + ([("TTL", out / "ttl/TTL.tgz")] if ttl else []):
        subprocess.run(
            ["tar", "czf", str(dst), "-C", str(out / "store/jetstream/$G/streams"), name],
            check=True,
        )


async def observe(binary: str, out: Path, t0: float, name: str = "AGE") -> dict:
    await asyncio.sleep(max(0.0, t0 + MAX_AGE_S + 1 - time.time()))
    res = {}
    with nb.NatsServer(binary, out / "restored") as s:
        nc = await nb.connect(s.url)
        await nb.wait_jetstream(nc)
        await nb.restore_stream(nc, out / "bk")
        await asyncio.sleep(1.5)
        at = time.time()
        res["v"] = {"at": rfc3339(at), "state": (await nb.stream_info(nc, name))["state"]}
        await nc.close()
    streams = out / "extracted/jetstream/$G/streams"
    streams.mkdir(parents=True)
    subprocess.run(["tar", "xzf", str(out / f"{name}.tgz"), "-C", str(streams)], check=True)
    with nb.NatsServer(binary, out / "extracted") as s:
        nc = await nb.connect(s.url)
        await nb.wait_jetstream(nc)
        await asyncio.sleep(1.5)
        at = time.time()
        res["tgz"] = {"at": rfc3339(at), "state": (await nb.stream_info(nc, name))["state"]}
        await nc.close()
    return res


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server215", required=True)
    ap.add_argument("--server29", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out = Path(a.out)
    rels = {"2.15.1": a.server215, "2.9.10": a.server29}
    for r in rels:
        shutil.rmtree(out / r, ignore_errors=True)
        (out / r).mkdir(parents=True)
    t0 = time.time()
    await asyncio.gather(*(make(b, out / r, t0, r == "2.15.1") for r, b in rels.items()))
    got = await asyncio.gather(
        *(observe(b, out / r, t0) for r, b in rels.items()),
        observe(a.server215, out / "2.15.1/ttl", t0, "TTL"),
    )
    facts = dict(zip(rels, got))
    facts["2.15.1"]["ttl"] = got[-1]
    print(json.dumps(facts))


asyncio.run(main())
