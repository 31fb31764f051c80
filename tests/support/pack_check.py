"""Load `jetdir pack` outputs into real servers and compare with the source's facts.

Usage: pack_check.py CASES.json RESULTS.json
       pack_check.py make-edges OUTDIR   (a 2.15 store with the edge cases below, see make_edges)

CASES.json is a list of cases:
  {"id": str, "server": "2.15"|"2.9", "mode": "restore"|"tgz",
   "path": backup dir (restore; an account-backup dir when "all" is true) or .tgz file,
   "all": bool, "streams": {name: facts-of-that-stream (facts.json "streams"[name])},
   "consumers": bool (compare consumers, default true)}
Each case gets a fresh server (127.0.0.1, own temp store). "restore" uploads every backup dir
with the chunked restore protocol (`natsbox.restore_stream`, as `nats stream restore` does);
"tgz" extracts the tarball with GNU tar into <store>/jetstream/$G/streams/ before the server
starts. Then, and once more after a SIGTERM restart on the same store, it records STREAM.INFO,
CONSUMER.INFO and every message (MSG.GET) and compares them with the facts.

RESULTS.json: {id: {"ok": bool, "error": str|null, "mismatches": [str], "log": str}}.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import natsbox  # noqa: E402


def compare(name: str, want: dict, got: dict, with_consumers: bool, tag: str) -> list[str]:
    out = []
    ws, gs = want["info"]["state"], got["info"]["state"]
    for k in ["messages", "bytes", "first_seq", "last_seq", "num_subjects", "num_deleted",
              "first_ts", "last_ts", "consumer_count"]:
        if k == "consumer_count" and not with_consumers:
            continue
        if ws.get(k, 0) != gs.get(k, 0):
            out.append(f"{tag} {name}: state.{k} = {gs.get(k)!r}, source {ws.get(k)!r}")
    if (ws.get("subjects") or {}) != (gs.get("subjects") or {}):
        out.append(f"{tag} {name}: subjects {gs.get('subjects')} != {ws.get('subjects')}")
    if [d for d in (ws.get("deleted") or []) if d] != [d for d in (gs.get("deleted") or []) if d]:
        out.append(f"{tag} {name}: deleted {gs.get('deleted')} != {ws.get('deleted')}")
    wm, gm = want["messages"], got["messages"]
    if len(wm) != len(gm):
        out.append(f"{tag} {name}: {len(gm)} messages, source {len(wm)}")
    for a, b in zip(wm, gm):
        for k in ["seq", "subject", "time", "hdrs", "data", "data_b64"]:
            if a.get(k) != b.get(k):
                out.append(f"{tag} {name}: seq {a['seq']} {k} {b.get(k)!r} != {a.get(k)!r}")
                break
    if with_consumers:
        wc, gc = want.get("consumers") or {}, got["consumers"]
        if sorted(wc) != sorted(gc):
            out.append(f"{tag} {name}: consumers {sorted(gc)} != {sorted(wc)}")
        for c in sorted(set(wc) & set(gc)):
            a, b = wc[c], gc[c]
            for k in ["delivered", "ack_floor"]:
                for q in ["consumer_seq", "stream_seq"]:
                    if a[k][q] != b[k][q]:
                        out.append(f"{tag} {name}/{c}: {k}.{q} = {b[k][q]}, source {a[k][q]}")
            for k in ["num_ack_pending", "num_redelivered", "num_pending"]:
                if a.get(k, 0) != b.get(k, 0):
                    out.append(f"{tag} {name}/{c}: {k} = {b.get(k, 0)}, source {a.get(k, 0)}")
            for k in ["ack_policy", "deliver_policy", "filter_subject", "durable_name"]:
                if a["config"].get(k) != b["config"].get(k):
                    out.append(f"{tag} {name}/{c}: config.{k} differs")
    return out


async def record(url: str, names: list[str]) -> dict:
    nc = await natsbox.connect(url)
    try:
        await natsbox.wait_jetstream(nc)
        have = await natsbox.stream_names(nc)
        out = {"_names": have}
        for n in names:
            if n in have:
                info = await natsbox.stream_info(nc, n)
                st = info["state"]
                # a broken restore can claim absurd sequences (2.9 reading 2.10+ tombstones)
                sane = st["last_seq"] - st["first_seq"] <= 1_000_000
                out[n] = await natsbox.record_stream(nc, n, with_messages=sane)
                if not sane:
                    out[n]["messages"] = []
        return out
    finally:
        await nc.close()


async def restore_all(url: str, dirs: list[Path]) -> list[dict]:
    nc = await natsbox.connect(url)
    try:
        await natsbox.wait_jetstream(nc)
        return [await natsbox.restore_stream(nc, d) for d in dirs]
    finally:
        await nc.close()


def run_case(case: dict) -> dict:
    binary = natsbox.find_server(case["server"])
    if binary is None:
        return {"ok": False, "error": f"no server {case['server']}", "mismatches": [], "log": ""}
    work = Path(tempfile.mkdtemp(prefix="packcheck-"))
    store = work / "store"
    names = sorted(case["streams"])
    path = Path(case["path"])
    if case["mode"] == "tgz":
        dest = store / "jetstream" / "$G" / "streams"
        dest.mkdir(parents=True)
        subprocess.run(["tar", "-xzf", str(path), "-C", str(dest)], check=True)
    srv = natsbox.NatsServer(binary, store, work_dir=work / "w")
    res = {"ok": False, "error": None, "mismatches": [], "log": ""}
    try:
        srv.start()
        if case["mode"] == "restore":
            dirs = [path / n for n in names] if case.get("all") else [path]
            asyncio.run(restore_all(srv.url, dirs))
        rounds = [("loaded", asyncio.run(record(srv.url, names)))]
        srv.stop()
        srv.start()
        rounds.append(("restarted", asyncio.run(record(srv.url, names))))
        for tag, got in rounds:
            for n in names:
                if n not in got:
                    res["mismatches"].append(f"{tag}: stream {n} missing (server has {got['_names']})")
                    continue
                res["mismatches"] += compare(n, case["streams"][n], got[n],
                                             case.get("consumers", True), tag)
        res["ok"] = not res["mismatches"]
    except Exception as e:  # noqa: BLE001 - report every failure to the Rust side
        res["error"] = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
    finally:
        try:
            srv.stop()
        except Exception:  # noqa: BLE001
            pass
        res["log"] = srv.log_tail(15)
        shutil.rmtree(work, ignore_errors=True)
    return res


async def _edge_ops(url: str) -> dict:
    """Streams whose 2.15 blocks 2.9 cannot read as they are: deletes at the end (tombstones
    last, last sequence past the last live message, an erased last record), a purge that
    left a block holding only a tombstone, and blocks compacted by the server (records gone
    from inside a block, from its head, and a whole block removed)."""
    nc = await natsbox.connect(url)
    try:
        await natsbox.wait_jetstream(nc)
        await natsbox.create_stream(nc, {"name": "LASTDEL", "subjects": ["last.>"],
                                         "storage": "file"})
        for i in range(1, 6):
            await natsbox.publish(nc, f"last.{i % 2}", f"last {i}".encode())
        await natsbox.delete_msg(nc, "LASTDEL", 4, erase=False)
        await natsbox.delete_msg(nc, "LASTDEL", 5, erase=True)
        await natsbox.create_stream(nc, {"name": "PURGEONLY", "subjects": ["po.>"],
                                         "storage": "file"})
        for i in range(1, 4):
            await natsbox.publish(nc, f"po.{i}", b"x")
        await natsbox.purge(nc, "PURGEONLY")
        # max_bytes 120000 -> 32000-byte blocks of 30 records (1..30, 31..60, 61..90, 91..)
        await natsbox.create_stream(nc, {"name": "COMPACT", "subjects": ["cmp.>"],
                                         "storage": "file", "max_bytes": 120000})
        body = b"c" * 1000
        for i in range(1, 101):
            await natsbox.publish(nc, f"cmp.{i % 3}", body)
        dels = [s for s in range(1, 21) if s not in (3, 7)] + list(range(31, 51)) + \
            list(range(61, 91)) + [95, 100]
        for s in dels:
            await natsbox.delete_msg(nc, "COMPACT", s, erase=False)
        await asyncio.sleep(2.5)  # sync_interval 1s: the server compacts blocks 1 and 2
        names = ["LASTDEL", "PURGEONLY", "COMPACT"]
        return {n: await natsbox.record_stream(nc, n) for n in names}
    finally:
        await nc.close()


def make_edges(out: Path) -> None:
    binary = natsbox.find_server("2.15")
    if binary is None:
        raise SystemExit("no nats-server 2.15")
    srv = natsbox.NatsServer(binary, out / "store", jetstream_extra={"sync_interval": "1s"},
                             work_dir=out / "w")
    srv.start()
    try:
        facts = asyncio.run(_edge_ops(srv.url))
    finally:
        srv.stop()
    (out / "facts.json").write_text(json.dumps({"streams": facts}, indent=2))


def main() -> None:
    if sys.argv[1] == "make-edges":
        make_edges(Path(sys.argv[2]))
        return
    cases = json.loads(Path(sys.argv[1]).read_text())
    results = {c["id"]: run_case(c) for c in cases}
    Path(sys.argv[2]).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
