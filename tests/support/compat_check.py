"""What jetdir writes is what each release reads (issue #9 part 4).

    compat_check.py JETDIR OUTDIR VERSION...   -> OUTDIR/results.json

Per release: one server builds a store with several streams (PLAIN with deletes and a
consumer; on 2.11+ TTL with per-message TTLs; on 2.12+ SCHED with pending `@at` schedules,
on 2.14+ also `@every` and cron ones; SRC
sourcing PLAIN), records them and stops. Then `jetdir pack --all` (v1) and `--format tgz` of
that store go back into a fresh server of the same release (v1 through the restore API, tgz
extracted into the store dir), which is started, recorded, restarted and recorded again. On
2.15+ also: `jetdir pack --format v2` restored through the API, and the server's own backup
(V2) written into a store by `jetdir extract`. Every round is compared with the source and
the server log must hold none of BAD.

results.json: {version: {"missing": bool, "streams": [names], "cases": {case: {"ok",
"mismatches", "bad_log", "error"}}}}.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import subprocess
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import natsbox  # noqa: E402
from pack_check import compare  # noqa: E402

BAD = ["mismatch", "corrupt state file", "outdated", "errored", "Error decoding",
       "inconsistency", "could not locate"]


def minor(version: str) -> int:
    return int(version.split(".")[1])


async def build(url: str, version: str) -> dict:
    """Create the streams; returns {name: record} in restore order (sources last)."""
    nc = await natsbox.connect(url)
    try:
        await natsbox.wait_jetstream(nc)
        names = ["PLAIN"]
        await natsbox.create_stream(nc, {"name": "PLAIN", "subjects": ["plain.>"],
                                         "storage": "file"})
        for i in range(1, 41):
            await natsbox.publish(nc, f"plain.{i % 4}", f"plain {i}".encode() * 3)
        for s in (5, 6, 33):
            await natsbox.delete_msg(nc, "PLAIN", s, erase=False)
        await natsbox.create_consumer(nc, "PLAIN", {"durable_name": "C1",
                                                    "ack_policy": "explicit"})
        for m in await natsbox.fetch(nc, "PLAIN", "C1", 7):
            await natsbox.ack(nc, m)
        if minor(version) >= 11:
            names.append("TTL")
            await natsbox.create_stream(nc, {"name": "TTL", "subjects": ["ttl.>"],
                                             "storage": "file", "allow_msg_ttl": True})
            for i in range(1, 13):
                hdrs = {"Nats-TTL": "1h"} if i % 3 else None
                await natsbox.publish(nc, f"ttl.{i % 2}", f"ttl {i}".encode(), hdrs)
            await natsbox.delete_msg(nc, "TTL", 4, erase=False)
        if minor(version) >= 12:
            names.append("SCHED")
            await natsbox.create_stream(nc, {"name": "SCHED", "subjects": ["sched.>"],
                                             "storage": "file", "allow_msg_schedules": True})
            at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
            await natsbox.publish(nc, "sched.plain", b"before")
            for i in range(1, 4):
                await natsbox.publish(nc, f"sched.job.{i}", f"job {i}".encode(), {
                    "Nats-Schedule": f"@at {at}",
                    "Nats-Schedule-Target": f"sched.out.{i}"})
            if minor(version) >= 14:
                # repeating schedules (2.14+): an interval, cron in UTC (named and implied),
                # a predefined one; none fires during the test
                for i, (pat, zone) in enumerate([("@every 3h", None),
                                                  ("0 30 4 1 1 *", None),
                                                  ("0 0 0 1 JAN ?", "UTC"),
                                                  ("@yearly", None)], start=4):
                    hdrs = {"Nats-Schedule": pat, "Nats-Schedule-Target": f"sched.out.{i}"}
                    if zone:
                        hdrs["Nats-Schedule-Time-Zone"] = zone
                    await natsbox.publish(nc, f"sched.job.{i}", f"job {i}".encode(), hdrs)
        names.append("SRC")
        await natsbox.create_stream(nc, {"name": "SRC", "storage": "file",
                                         "sources": [{"name": "PLAIN"}]})
        want = (await natsbox.stream_info(nc, "PLAIN"))["state"]["messages"]
        for _ in range(100):
            if (await natsbox.stream_info(nc, "SRC"))["state"]["messages"] >= want:
                break
            await asyncio.sleep(0.1)
        return {n: await natsbox.record_stream(nc, n) for n in names}
    finally:
        await nc.close()


async def record(url: str, names: list[str]) -> dict:
    nc = await natsbox.connect(url)
    try:
        await natsbox.wait_jetstream(nc)
        have = await natsbox.stream_names(nc)
        return {n: await natsbox.record_stream(nc, n) for n in names if n in have}
    finally:
        await nc.close()


async def restore(url: str, dirs: list[Path]) -> None:
    nc = await natsbox.connect(url)
    try:
        await natsbox.wait_jetstream(nc)
        for d in dirs:
            await natsbox.restore_stream(nc, d)
    finally:
        await nc.close()


async def snapshot(url: str, names: list[str], out: Path) -> None:
    nc = await natsbox.connect(url)
    try:
        await natsbox.wait_jetstream(nc)
        for n in names:
            await natsbox.snapshot_stream(nc, n, out / n)
    finally:
        await nc.close()


def bad_lines(log: Path) -> list[str]:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    return [ln for ln in text.splitlines() if any(b in ln for b in BAD)]


def sched_entries(path: Path) -> tuple[int, set]:
    """msgs/sched.db: `1 | u64 count | u64 high seq | (u16 len, subject, varint next ns,
    uvarint seq) * count` as (high seq, {(subject, next, seq)})."""
    b = path.read_bytes()

    def uvarint(i: int) -> tuple[int, int]:
        x = shift = 0
        while True:
            c = b[i]
            i += 1
            x |= (c & 0x7F) << shift
            shift += 7
            if c < 0x80:
                return x, i

    count = int.from_bytes(b[1:9], "little")
    high = int.from_bytes(b[9:17], "little")
    i, out = 17, set()
    for _ in range(count):
        n = int.from_bytes(b[i:i + 2], "little")
        subj = b[i + 2:i + 2 + n].decode()
        z, i = uvarint(i + 2 + n)
        seq, i = uvarint(i)
        out.add((subj, (z >> 1) ^ -(z & 1), seq))
    return high, out


def run(cmd: list[str]) -> None:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")


def check_store(binary: str, work: Path, facts: dict, *, prepare=None,
                restore_dirs: list[Path] | None = None) -> dict:
    """Start a server on work/store (after `prepare(store)`), restore `restore_dirs`, record,
    restart, record; compare each round with `facts`."""
    res = {"ok": False, "mismatches": [], "bad_log": [], "error": None}
    store = work / "store"
    srv = natsbox.NatsServer(binary, store, work_dir=work / "w")
    names = list(facts)
    try:
        if prepare:
            prepare(store)
        srv.start()
        if restore_dirs:
            asyncio.run(restore(srv.url, restore_dirs))
        rounds = [("loaded", asyncio.run(record(srv.url, names)))]
        srv.stop()
        srv.start()
        rounds.append(("restarted", asyncio.run(record(srv.url, names))))
        for tag, got in rounds:
            for n in names:
                if n not in got:
                    res["mismatches"].append(f"{tag}: stream {n} missing")
                    continue
                res["mismatches"] += compare(n, facts[n], got[n], True, tag)
    except Exception as e:  # noqa: BLE001 - every failure goes to the Rust side
        res["error"] = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
    finally:
        try:
            srv.stop()
        except Exception:  # noqa: BLE001
            pass
    res["bad_log"] = bad_lines(srv.log_path)
    res["ok"] = not res["mismatches"] and not res["bad_log"] and res["error"] is None
    return res


def one_release(jetdir: str, out: Path, version: str) -> dict:
    binary = natsbox.find_release(version)
    if binary is None:
        return {"missing": True}
    out.mkdir(parents=True)
    src = natsbox.NatsServer(binary, out / "src" / "store", work_dir=out / "src" / "w")
    src.start()
    try:
        facts = asyncio.run(build(src.url, version))
        if minor(version) >= 15:
            asyncio.run(snapshot(src.url, list(facts), out / "server-v2"))
    finally:
        src.stop()
    result = {"missing": False, "streams": list(facts), "cases": {},
              "source_bad_log": bad_lines(src.log_path)}
    store = out / "src" / "store"
    run([jetdir, "pack", str(store), "--all", "-o", str(out / "v1")])
    order = [out / "v1" / n for n in facts]
    result["cases"]["pack-v1"] = check_store(binary, out / "r-v1", facts, restore_dirs=order)
    run([jetdir, "pack", str(store), "--all", "--format", "tgz", "-o", str(out / "all.tgz")])

    def untar(st: Path) -> None:
        dest = st / "jetstream" / "$G" / "streams"
        dest.mkdir(parents=True)
        subprocess.run(["tar", "-xzf", str(out / "all.tgz"), "-C", str(dest)], check=True)

    result["cases"]["pack-tgz"] = check_store(binary, out / "r-tgz", facts, prepare=untar)
    if minor(version) >= 15:
        run([jetdir, "pack", str(store), "--all", "--format", "v2", "-o", str(out / "v2")])
        result["cases"]["pack-v2"] = check_store(
            binary, out / "r-v2", facts, restore_dirs=[out / "v2" / n for n in facts])

        def extract(st: Path) -> None:
            st.mkdir(parents=True)
            for n in facts:
                run([jetdir, "extract", str(out / "server-v2" / n), "--store-dir", str(st), "--create"])
            # the schedules jetdir wrote are the ones the source server kept (before this
            # server starts and rewrites the file)
            rel = Path("jetstream/$G/streams/SCHED/msgs/sched.db")
            if (store / rel).exists():
                theirs, ours = sched_entries(store / rel), sched_entries(st / rel)
                if theirs != ours:
                    raise RuntimeError(f"sched.db: server {theirs} != jetdir {ours}")

        result["cases"]["extract-server-v2"] = check_store(binary, out / "r-ext", facts,
                                                           prepare=extract)
    return result


def main() -> None:
    jetdir, out = sys.argv[1], Path(sys.argv[2])
    results = {}
    for v in sys.argv[3:]:
        try:
            results[v] = one_release(jetdir, out / v, v)
        except Exception as e:  # noqa: BLE001
            results[v] = {"missing": False, "error": f"{e}\n{traceback.format_exc()}",
                          "cases": {}}
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
