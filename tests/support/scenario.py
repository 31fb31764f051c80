#!/usr/bin/env python3
"""Build a store with a real nats-server and record what the server says.

  python3 tests/support/scenario.py --server BIN --out DIR [--scenario mixed]

Starts BIN on 127.0.0.1 (free port) with store dir DIR/store, runs the
scenario, records `$JS.API.STREAM.INFO` / `$JS.API.CONSUMER.INFO` of every
stream, stops the server with SIGTERM to its PID, and writes DIR/facts.json:

  {"version": "2.15.1", "scenario": "mixed", "store": "DIR/store",
   "streams": {"NAME": {"expected": {...}, "info": {...}, "consumers": {...}}}}

`expected` is natsbox.summarize(): messages, bytes, first_seq, last_seq,
num_deleted, deleted, num_subjects, subjects, consumers{delivered, ack_floor,
num_ack_pending, num_redelivered}.

Scenarios:
  recipes  the fixture recipes (ORDERS, PURGED, MULTI, KV_config)
  mixed    recipes + MIX: 240 messages of random size (fixed seed) in a
           stream with max_bytes 120000 (32000-byte blocks, oldest messages
           and blocks discarded by the limit), headers, erased and
           no_erase deletes, a filtered purge and a purge with keep,
           consumers with filter / ack-all / explicit acks and pending.
Exit code 0 on success; 3 when nats-py is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

try:
    import nats  # noqa: F401
except ImportError:
    print("scenario.py: nats-py is not installed (run scripts/install-deps.sh)", file=sys.stderr)
    sys.exit(3)

import natsbox as nb  # noqa: E402
import recipes  # noqa: E402


async def mix(nc) -> list[dict]:
    ops: list[dict] = []
    rng = random.Random(20261124)
    await nb.create_stream(nc, {"name": "MIX", "subjects": ["mix.>"], "max_bytes": 120000})
    subjects = ["mix.a", "mix.b", "mix.c.x", "mix.c.y", "mix.d"]
    for i in range(1, 241):
        subj = subjects[rng.randrange(len(subjects))]
        size = rng.randrange(0, 1400)
        hdrs = None
        if i % 7 == 0:
            hdrs = {"X-I": str(i), "X-Pad": "p" * rng.randrange(1, 60)}
        payload = bytes(rng.randrange(256) for _ in range(size))
        await nb.publish(nc, subj, payload, hdrs)
    info = await nb.stream_info(nc, "MIX")
    st = info["state"]
    ops.append({"op": "publish 240", "first_seq": st["first_seq"], "last_seq": st["last_seq"]})
    first, last = st["first_seq"], st["last_seq"]
    # Deletes: erased and not, spread over the live range (not the ends).
    for k, seq in enumerate(range(first + 3, last - 2, 9)):
        r = await nb.delete_msg(nc, "MIX", seq, erase=(k % 2 == 0))
        ops.append({"op": f"delete {seq} erase={k % 2 == 0}", "resp": r})
    ops.append({"op": "purge mix.a", "resp": await nb.purge(nc, "MIX", {"filter": "mix.a"})})
    ops.append(
        {"op": "purge mix.b keep 3", "resp": await nb.purge(nc, "MIX", {"filter": "mix.b", "keep": 3})}
    )
    for i in range(20):
        await nb.publish(nc, f"mix.e.{i % 3}", f"late {i}".encode(), {"X-Late": str(i)} if i % 2 else None)
    ops.append({"op": "publish 20 on mix.e.*"})

    # Consumers.
    await nb.create_consumer(
        nc, "MIX", {"durable_name": "ALL", "ack_policy": "explicit", "ack_wait": 60_000_000_000,
                    "deliver_policy": "all", "max_deliver": -1},
    )
    msgs = await nb.fetch(nc, "MIX", "ALL", 25)
    acked = []
    for j, m in enumerate(msgs):
        if j % 3 != 1:
            await nb.ack(nc, m)
            acked.append(nb.ack_meta(m)["stream_seq"])
    ops.append({"op": "ALL fetch 25, ack all but every 3rd",
                "stream_seqs": [nb.ack_meta(m)["stream_seq"] for m in msgs], "acked": acked})

    await nb.create_consumer(
        nc, "MIX", {"durable_name": "CX", "ack_policy": "explicit", "ack_wait": 60_000_000_000,
                    "deliver_policy": "all", "filter_subject": "mix.c.>", "max_deliver": -1},
    )
    msgs = await nb.fetch(nc, "MIX", "CX", 10)
    for m in msgs[:6]:
        await nb.ack(nc, m)
    if len(msgs) > 7:
        await nb.ack(nc, msgs[7], b"-NAK")
        again = await nb.fetch(nc, "MIX", "CX", 1)
        ops.append({"op": "CX nak + refetch", "stream_seqs": [nb.ack_meta(m)["stream_seq"] for m in again]})
    ops.append({"op": "CX fetch 10 (filter mix.c.>), ack first 6",
                "stream_seqs": [nb.ack_meta(m)["stream_seq"] for m in msgs]})

    await nb.create_consumer(
        nc, "MIX", {"durable_name": "AA", "ack_policy": "all", "ack_wait": 60_000_000_000,
                    "deliver_policy": "all", "max_deliver": -1},
    )
    msgs = await nb.fetch(nc, "MIX", "AA", 12)
    if len(msgs) > 8:
        await nb.ack(nc, msgs[8])
    ops.append({"op": "AA fetch 12 (ack all), ack the 9th",
                "stream_seqs": [nb.ack_meta(m)["stream_seq"] for m in msgs]})

    await nb.create_consumer(
        nc, "MIX", {"durable_name": "NEWONLY", "ack_policy": "none", "deliver_policy": "new"}
    )
    ops.append({"op": "NEWONLY (deliver new, nothing fetched)"})
    return ops


SCENARIOS = {
    "recipes": ["ORDERS", "PURGED", "MULTI", "KV_config"],
    "mixed": ["ORDERS", "PURGED", "MULTI", "KV_config", "MIX"],
    # 2.10+ only: S2-compressed blocks and a stream that never held a message
    "mixed-2.15": ["ORDERS", "PURGED", "MULTI", "KV_config", "MIX", "CMP", "EMPTY"],
}


async def run(url: str, streams: list[str]) -> dict:
    nc = await nb.connect(url)
    try:
        await nb.wait_jetstream(nc)
        ops = {}
        for s in streams:
            ops[s] = await (mix(nc) if s == "MIX" else recipes.RECIPES[s](nc))
        names = await nb.stream_names(nc)
        recorded = {n: await nb.record_stream(nc, n, with_messages=False) for n in names}
        return {"ops": ops, "streams": recorded}
    finally:
        await nc.close()


async def record_all(url: str) -> dict:
    nc = await nats.connect(url)
    try:
        await nb.wait_jetstream(nc)
        names = await nb.stream_names(nc)
        return {n: await nb.record_stream(nc, n, with_messages=False) for n in names}
    finally:
        await nc.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--scenario", default="mixed", choices=sorted(SCENARIOS))
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "store"
    srv = nb.NatsServer(a.server, store, work_dir=out)
    srv.start()
    try:
        res = asyncio.run(run(srv.url, SCENARIOS[a.scenario]))
    except BaseException:
        srv.stop()
        print(srv.log_tail(), file=sys.stderr)
        raise
    rc = srv.stop()
    # What a server computes from these files alone: restart on a copy and ask again.
    # (2.9.10 reports ack floors at runtime that it never persists; after a restart it
    # reports what o.dat holds, and that is what an offline tool can know.)
    copy = out / "restart-store"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(store, copy)
    srv2 = nb.NatsServer(a.server, copy, work_dir=out / "restart")
    srv2.start()
    try:
        res["after_restart"] = asyncio.run(record_all(srv2.url))
    finally:
        srv2.stop()
        shutil.rmtree(copy, ignore_errors=True)
    facts = {
        "version": nb.server_version(a.server),
        "binary": a.server,
        "args": srv.args,
        "scenario": a.scenario,
        "store": str(store),
        "exit_code": rc,
        **res,
    }
    (out / "facts.json").write_text(json.dumps(facts, indent=1) + "\n")
    summary = {n: {k: v for k, v in s["expected"].items() if k in ("messages", "bytes", "first_seq", "last_seq", "num_deleted")}
               for n, s in res["streams"].items()}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
