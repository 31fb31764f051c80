#!/usr/bin/env python3
"""Differential matrix: jetdir's prediction against the real server's load.

  python3 tests/support/matrix.py --sample|--full [--releases 2.12.8,2.15.1]
        [--failures clean,flip_len] [--out DIR] [--results FILE] [--jetdir BIN]

For every release (natsbox.find_release) this

1. builds a store with that release (every workload below that the release
   supports), in two phases with a clean restart between them so that an
   older index.db (2.10+) / older .idx files (2.9) can be kept for the
   "stale index" case; stops the server with SIGTERM (or SIGKILL for the kill
   cases, which get a build of their own);
2. for every failure: copies the stopped store to CASE/store, damages the
   copy (FAILURES below), copies it again and starts the SAME release on the
   second copy, records the server's truth (STREAM.INFO with deleted details
   and subjects, CONSUMER.INFO of every consumer, the live sequences by
   STREAM.MSG.GET where the stream is small (each sequence not served asked
   for once more: the read that cuts a damaged block fails), STREAM.INFO again
   after those reads when they changed it, with every CONSUMER.INFO again
   (compared instead: jetdir reports the stream once its blocks have been
   read), and the [WRN]/[ERR]/[FTL] lines
   the server logged while loading) into CASE/truth.json;
3. runs `jetdir verify --json CASE/store` (the damaged, never-restarted store)
   into CASE/jetdir.json and compares, per stream, only the fields jetdir
   reports with the server's numbers; writes CASE/compare.json;
4. writes a markdown table (one row per release x failure, one cell per
   stream) and the list of disagreements to --results.

Nothing here predicts anything: the expectation is always what the server
said after loading the files.

With `--cipher chacha|aes` every store is encrypted (`jetstream { key, cipher }`,
the same key for every release) and jetdir reads it with `--key-file`; the
record-level damage finds its records through `jetdir dump` of the undamaged
copy (the blocks are XOR-encrypted, so a record sits at the same offset in the
ciphertext), and the failures ENC_FAILURES (a block's key file missing or
damaged, meta.key damaged) join the list. Results go to --results (never to
tests/matrix-results.md or README).

Time-sensitive streams (AGE: max_age 6s; TTL: per-message TTL 6s) are only
compared in the rows restarted within a few seconds of the build (clean,
kill_*) and in `expired` (restarted after their age has passed); in every
other row their messages have expired in the meantime, so they are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import natsbox as nb  # noqa: E402

REPO = nb.REPO
AGE_S = 6  # max_age of AGE and the short TTL of TTL, seconds

# --cipher: {"cipher": "chacha"|"aes", "key_file": path, "jetdir": binary}; None: plaintext
ENC: Optional[dict] = None
ENC_KEY = "jetdir-matrix-key-0123456789abcdef"


def server_extra() -> Optional[dict]:
    """The `jetstream { ... }` settings of every server this run starts."""
    return {"key": ENC_KEY, "cipher": ENC["cipher"]} if ENC else None


def key_args() -> list[str]:
    return ["--key-file", str(ENC["key_file"])] if ENC else []


def vt(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def lorem(prefix: str, i: int, size: int = 1000) -> bytes:
    base = f"{prefix} message {i:05d} " + "lorem ipsum dolor sit amet " * (size // 20 + 2)
    return base[:size].encode()


# --------------------------------------------------------------------------
# workloads: one stream each (plus consumers); phase 1 then phase 2
# --------------------------------------------------------------------------


async def explicit_consumer(nc, stream: str, name: str, fetch: int, ack_upto: int, nak: int = -1,
                            extra: Optional[dict] = None) -> None:
    cfg = {"durable_name": name, "ack_policy": "explicit", "ack_wait": 120_000_000_000,
           "max_deliver": -1, "deliver_policy": "all", **(extra or {})}
    await nb.create_consumer(nc, stream, cfg)
    msgs = await nb.fetch(nc, stream, name, fetch)
    for j, m in enumerate(msgs):
        if j == nak:
            await nb.ack(nc, m, b"-NAK")
        elif j < ack_upto:
            await nb.ack(nc, m)


async def w_plain(nc, v: str, phase: int, name: str = "PLAIN", compression: Optional[str] = None):
    """100 x 1000-byte messages on 5 subjects, every 7th with headers, 32000-byte
    blocks (max_bytes 120000, not reached: 4 blocks); deletes with and without
    erase; consumers of several kinds."""
    pre = name.lower()
    if phase == 1:
        cfg: dict = {"name": name, "subjects": [f"{pre}.>"], "max_bytes": 120000}
        if compression:
            cfg["compression"] = compression
        await nb.create_stream(nc, cfg)
        rng = range(1, 51)
    else:
        rng = range(51, 101)
    for i in rng:
        hdrs = {"X-I": str(i), "X-Pad": "h" * (i % 13)} if i % 7 == 0 else None
        await nb.publish(nc, f"{pre}.{i % 5}", lorem(name, i), hdrs)
    if phase == 1:
        await nb.delete_msg(nc, name, 10, erase=False)
        await explicit_consumer(nc, name, "C_OLD", 8, 5)
        return
    await nb.delete_msg(nc, name, 40, erase=True)
    await nb.delete_msg(nc, name, 77, erase=False)
    await nb.delete_msg(nc, name, 99, erase=False)
    await explicit_consumer(nc, name, "C_EXPL", 30, 20, nak=3)
    await explicit_consumer(nc, name, "C_FILT", 10, 4, extra={"filter_subject": f"{pre}.2"})
    await nb.create_consumer(nc, name, {"durable_name": "C_NONE", "ack_policy": "none",
                                        "deliver_policy": "all"})
    await nb.fetch(nc, name, "C_NONE", 15)
    await nb.create_consumer(nc, name, {"durable_name": "C_ALL", "ack_policy": "all",
                                        "ack_wait": 120_000_000_000, "deliver_policy": "all"})
    msgs = await nb.fetch(nc, name, "C_ALL", 12)
    if len(msgs) > 8:
        await nb.ack(nc, msgs[8])
    await nb.create_consumer(nc, name, {"durable_name": "C_PUSH", "ack_policy": "explicit",
                                        "deliver_subject": f"push.{pre}", "deliver_policy": "last",
                                        "ack_wait": 120_000_000_000})
    await nb.create_consumer(nc, name, {"durable_name": "C_NEW", "ack_policy": "none",
                                        "deliver_policy": "new"})
    await explicit_consumer(nc, name, "C_START", 5, 3, extra={"deliver_policy": "by_start_sequence",
                                                            "opt_start_seq": 50})
    await explicit_consumer(nc, name, "C_MAXDEL", 4, 0, nak=0, extra={"max_deliver": 2})
    if vt(v) >= (2, 10):
        await explicit_consumer(nc, name, "C_MULTI", 8, 5,
                                extra={"filter_subjects": [f"{pre}.1", f"{pre}.3"]})
    if vt(v) >= (2, 11):
        until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
        await nb.create_consumer(nc, name, {"durable_name": "C_PAUSED", "ack_policy": "explicit",
                                            "deliver_policy": "all",
                                            "pause_until": until.isoformat().replace("+00:00", "Z")})


async def w_cmp(nc, v, phase):
    await w_plain(nc, v, phase, name="CMP", compression="s2")


async def w_s2switch(nc, v, phase):
    """Created without compression, 60 messages, switched to s2 (a running
    server keeps writing uncompressed blocks until it restarts); 60 more after
    the restart between the phases, which go into s2 blocks."""
    name = "SWITCH"
    if phase == 1:
        await nb.create_stream(nc, {"name": name, "subjects": ["switch.>"], "max_bytes": 120000})
        rng = range(1, 61)
    else:
        rng = range(61, 121)
    for i in rng:
        await nb.publish(nc, f"switch.{i % 3}", lorem(name, i, 800))
    if phase == 1:
        info = await nb.stream_info(nc, name)
        cfg = info["config"]
        cfg["compression"] = "s2"
        await nb.js_api(nc, f"$JS.API.STREAM.UPDATE.{name}", cfg)
    else:
        await nb.delete_msg(nc, name, 30, erase=False)


async def w_kv(nc, v, phase):
    """KV bucket `cfg`, history 5: 30 keys, 150 puts, deletes and purges."""
    js = nc.jetstream()
    if phase == 1:
        kv = await js.create_key_value(bucket="cfg", history=5)
        rng = range(0, 80)
    else:
        kv = await js.key_value("cfg")
        rng = range(80, 150)
    for i in rng:
        await kv.put(f"k{i % 30:02d}", f"value {i} ".encode() * (1 + i % 4))
    if phase == 2:
        for k in ("k03", "k11", "k17"):
            await kv.delete(k)
        for k in ("k05", "k21"):
            await kv.purge(k)


async def w_obj(nc, v, phase):
    """Object store bucket `files`: 3 objects in 128 KiB chunks, one deleted."""
    js = nc.jetstream()
    if phase == 1:
        ob = await js.create_object_store("files")
        await ob.put("a.bin", bytes((i * 7) % 251 for i in range(300_000)))
        await ob.put("b.txt", b"small object\n" * 100)
    else:
        ob = await js.object_store("files")
        await ob.put("c.bin", bytes((i * 13) % 253 for i in range(200_000)))
        await ob.delete("b.txt")


async def w_lim_msgs(nc, v, phase):
    if phase == 1:
        await nb.create_stream(nc, {"name": "LIM_MSGS", "subjects": ["lmsgs.>"], "max_msgs": 50})
    for i in range(100 * (phase - 1) + 1, 100 * phase + 1):
        await nb.publish(nc, f"lmsgs.{i % 4}", f"m{i}".encode() * 20)


async def w_lim_bytes(nc, v, phase):
    if phase == 1:
        await nb.create_stream(nc, {"name": "LIM_BYTES", "subjects": ["lbytes.>"],
                                    "max_bytes": 40000})
    for i in range(100 * (phase - 1) + 1, 100 * phase + 1):
        await nb.publish(nc, f"lbytes.{i % 4}", lorem("LB", i, 500))


async def w_lim_persubj(nc, v, phase):
    if phase == 1:
        await nb.create_stream(nc, {"name": "LIM_SUBJ", "subjects": ["lsubj.>"],
                                    "max_msgs_per_subject": 2})
    for i in range(100 * (phase - 1) + 1, 100 * phase + 1):
        await nb.publish(nc, f"lsubj.{i % 20}", f"s{i}".encode())


async def w_age(nc, v, phase):
    if phase == 1:
        await nb.create_stream(nc, {"name": "AGE", "subjects": ["age.>"],
                                    "max_age": AGE_S * 1_000_000_000})
        return  # published in phase 2 only, right before the stop
    for i in range(1, 41):
        await nb.publish(nc, f"age.{i % 3}", f"a{i}".encode())


async def w_ttl(nc, v, phase):
    """2.11+: allow_msg_ttl; 20 messages with a 6s TTL, 20 without, 10 with 1h."""
    if phase == 1:
        await nb.create_stream(nc, {"name": "TTL", "subjects": ["ttl.>"], "allow_msg_ttl": True})
        return
    for i in range(1, 51):
        hdrs = None
        if i <= 20:
            hdrs = {"Nats-TTL": f"{AGE_S}s"}
        elif i > 40:
            hdrs = {"Nats-TTL": "1h"}
        await nb.publish(nc, f"ttl.{i % 10}", f"t{i}".encode(), hdrs)


async def w_sdm(nc, v, phase):
    """2.11+: subject delete markers: max_age 6s, subject_delete_marker_ttl 60s.
    (With subject_delete_marker_ttl set, 2.15.1 did not expire per-message TTLs
    at all in a quick test, so TTL is a separate stream.)"""
    if phase == 1:
        await nb.create_stream(nc, {"name": "SDM", "subjects": ["sdm.>"], "allow_msg_ttl": True,
                                    "max_age": AGE_S * 1_000_000_000,
                                    "subject_delete_marker_ttl": 60_000_000_000})
        return
    for i in range(1, 31):
        await nb.publish(nc, f"sdm.{i % 5}", f"d{i}".encode())


async def w_wq(nc, v, phase):
    """Work queue: consumer acks 30 of 60 (acked messages are removed)."""
    if phase == 1:
        await nb.create_stream(nc, {"name": "WQ", "subjects": ["wq.>"], "retention": "workqueue"})
        await nb.create_consumer(nc, "WQ", {"durable_name": "WORKER", "ack_policy": "explicit",
                                            "ack_wait": 120_000_000_000})
        for i in range(1, 61):
            await nb.publish(nc, f"wq.{i % 2}", f"job {i}".encode())
        return
    msgs = await nb.fetch(nc, "WQ", "WORKER", 40)
    for m in msgs[:30]:
        await nb.ack(nc, m)


async def w_interest(nc, v, phase):
    """Interest retention, two consumers at different ack floors."""
    if phase == 1:
        await nb.create_stream(nc, {"name": "INTEREST", "subjects": ["int.>"],
                                    "retention": "interest"})
        for n in ("I1", "I2"):
            await nb.create_consumer(nc, "INTEREST", {"durable_name": n, "ack_policy": "explicit",
                                                      "ack_wait": 120_000_000_000})
        for i in range(1, 41):
            await nb.publish(nc, f"int.{i % 2}", f"e{i}".encode())
        return
    for n, k in (("I1", 30), ("I2", 12)):
        msgs = await nb.fetch(nc, "INTEREST", n, k)
        for m in msgs:
            await nb.ack(nc, m)


async def w_sealed(nc, v, phase):
    if phase == 1:
        await nb.create_stream(nc, {"name": "SEALED", "subjects": ["sealed.>"]})
        for i in range(1, 21):
            await nb.publish(nc, f"sealed.{i % 2}", f"z{i}".encode())
        await nb.delete_msg(nc, "SEALED", 5, erase=False)
        return
    info = await nb.stream_info(nc, "SEALED")
    cfg = info["config"]
    cfg["sealed"] = True
    await nb.js_api(nc, "$JS.API.STREAM.UPDATE.SEALED", cfg)


async def w_mirror(nc, v, phase):
    """MIRROR mirrors ORIGIN (a small stream no failure touches, so that nothing
    is left to sync after a restart); SRC sources LIM_SUBJ. Waits for both to
    catch up."""
    if phase == 1:
        await nb.create_stream(nc, {"name": "ORIGIN", "subjects": ["origin.>"]})
        await nb.create_stream(nc, {"name": "MIRROR", "mirror": {"name": "ORIGIN"}})
        await nb.create_stream(nc, {"name": "SRC", "subjects": ["src.>"],
                                    "sources": [{"name": "LIM_SUBJ"}]})
    for i in range(1, 31):
        await nb.publish(nc, f"origin.{i % 3}", f"o{phase}.{i}".encode())
    if phase == 2:
        await nb.delete_msg(nc, "ORIGIN", 7, erase=False)
    for mirror, origin in (("MIRROR", "ORIGIN"), ("SRC", "LIM_SUBJ")):
        want = (await nb.stream_info(nc, origin))["state"]["last_seq"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            st = (await nb.stream_info(nc, mirror))["state"]
            if mirror == "MIRROR" and st["last_seq"] >= want:
                break
            if mirror == "SRC" and st["messages"] >= 40 * phase:
                break
            await asyncio.sleep(0.1)


async def w_big(nc, v, phase):
    if phase == 1:
        await nb.create_stream(nc, {"name": "BIG", "subjects": ["big.>"]})
        for i in range(1, 3):
            await nb.publish(nc, f"big.{i}", bytes((i + j) % 256 for j in range(600_000)))
        return
    await nb.publish(nc, "big.3", b"z" * 700_000)


async def w_many(nc, v, phase):
    if phase == 1:
        await nb.create_stream(nc, {"name": "MANY", "subjects": ["many.>"]})
    for i in range(1000 * (phase - 1), 1000 * phase):
        await nb.publish(nc, f"many.{i}.x", b"")


async def w_counter(nc, v, phase):
    """2.12+: a counter stream (Nats-Incr)."""
    if phase == 1:
        await nb.create_stream(nc, {"name": "COUNTER", "subjects": ["cnt.>"],
                                    "allow_msg_counter": True})
    for i in range(1, 21):
        await nb.publish(nc, f"cnt.{i % 3}", b"", {"Nats-Incr": f"+{i}"})


async def w_batch(nc, v, phase):
    """2.12+: atomic batch publishes of 5 messages."""
    if phase == 1:
        await nb.create_stream(nc, {"name": "BATCH", "subjects": ["batch.>"],
                                    "allow_atomic": True})
    for b in range(3):
        bid = f"b{phase}-{b}"
        for k in range(1, 6):
            hdrs = {"Nats-Batch-Id": bid, "Nats-Batch-Sequence": str(k)}
            if k == 5:
                hdrs["Nats-Batch-Commit"] = "1"
                await nb.publish(nc, f"batch.{k}", f"{bid}:{k}".encode(), hdrs)
            else:
                await nc.publish(f"batch.{k}", f"{bid}:{k}".encode(), headers=hdrs)


async def w_sched(nc, v, phase):
    """2.12+: message schedules (allow_msg_schedules), two one-shot schedules an
    hour and two hours ahead (nothing fires during the run), plus plain messages."""
    if phase == 1:
        await nb.create_stream(nc, {"name": "SCHED", "subjects": ["sched.>"],
                                    "allow_msg_schedules": True})
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    at = (now + dt.timedelta(hours=phase)).isoformat().replace("+00:00", "Z")
    await nb.publish(nc, f"sched.job{phase}", f"scheduled {phase}".encode(),
                     {"Nats-Schedule": f"@at {at}", "Nats-Schedule-Target": f"sched.fired.{phase}"})
    for i in range(1, 11):
        await nb.publish(nc, f"sched.plain.{phase}", f"p{phase}.{i}".encode())


# name -> (builder, min version, time-sensitive)
WORKLOADS: dict[str, tuple[Callable, str, bool]] = {
    "PLAIN": (w_plain, "2.9.0", False),
    "CMP": (w_cmp, "2.10.0", False),
    "SWITCH": (w_s2switch, "2.10.0", False),
    "KV_cfg": (w_kv, "2.9.0", False),
    "OBJ_files": (w_obj, "2.9.0", False),
    "LIM_MSGS": (w_lim_msgs, "2.9.0", False),
    "LIM_BYTES": (w_lim_bytes, "2.9.0", False),
    "LIM_SUBJ": (w_lim_persubj, "2.9.0", False),
    "AGE": (w_age, "2.9.0", True),
    "TTL": (w_ttl, "2.11.0", True),
    "SDM": (w_sdm, "2.11.0", True),
    "WQ": (w_wq, "2.9.0", False),
    "INTEREST": (w_interest, "2.9.0", False),
    "SEALED": (w_sealed, "2.9.0", False),
    "MIRROR": (w_mirror, "2.9.0", False),  # also SRC
    "BIG": (w_big, "2.9.0", False),
    "MANY": (w_many, "2.9.0", False),
    "COUNTER": (w_counter, "2.12.0", False),
    "BATCH": (w_batch, "2.12.0", False),
    "SCHED": (w_sched, "2.12.0", False),
}
TIME_SENSITIVE = {"AGE", "TTL", "SDM"}
SAMPLE_WORKLOADS = ["PLAIN", "CMP", "KV_cfg", "LIM_MSGS", "LIM_SUBJ", "AGE", "TTL", "SDM", "INTEREST", "SCHED"]


# --------------------------------------------------------------------------
# building a store
# --------------------------------------------------------------------------


def stream_dirs(store: Path) -> dict[str, Path]:
    base = store / "jetstream" / "$G" / "streams"
    return {p.name: p for p in sorted(base.iterdir())} if base.is_dir() else {}


def save_index_files(store: Path, dest: Path) -> None:
    """Copy every stream's msgs/index.db and msgs/*.idx, *.fss to dest/<stream>/."""
    for name, sd in stream_dirs(store).items():
        for f in sorted((sd / "msgs").glob("*")):
            if f.name == "index.db" or f.suffix in (".idx", ".fss"):
                (dest / name).mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, dest / name / f.name)


async def run_phase(url: str, version: str, phase: int, workloads: list[str], log: list) -> None:
    nc = await nb.connect(url)
    try:
        await nb.wait_jetstream(nc)
        for w in workloads:
            fn, _, _ = WORKLOADS[w]
            t0 = time.monotonic()
            try:
                await fn(nc, version, phase)
                log.append({"workload": w, "phase": phase, "ok": True,
                            "s": round(time.monotonic() - t0, 2)})
            except Exception as e:  # noqa: BLE001 - a release may lack a feature
                log.append({"workload": w, "phase": phase, "ok": False, "error": repr(e)})
    finally:
        await nc.close()


async def flood(url: str, seconds: float) -> int:
    """Publish without waiting for acks to PLAIN and KV for `seconds`; returns count."""
    import nats

    async def quiet(e):  # the server is killed under us: no tracebacks
        pass

    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0,
                            allow_reconnect=False, error_cb=quiet)
    n = 0
    t_end = time.monotonic() + seconds
    try:
        while time.monotonic() < t_end:
            for _ in range(50):
                n += 1
                await nc.publish(f"plain.{n % 5}", lorem("FLOOD", n), reply="_x.flood")
                await nc.publish(f"$KV.cfg.k{n % 30:02d}", f"flood {n}".encode(), reply="_x.flood")
            await nc.flush(timeout=0.5)
    except Exception:  # noqa: BLE001 - the server is killed under us
        pass
    return n


def build_store(binary: str, version: str, out: Path, mode: str, workloads: list[str]) -> dict:
    """Build out/store with `binary`; mode "clean" (SIGTERM), "kill_idle" or
    "kill_mid" (SIGKILL). Saves phase-1 index files to out/stale/."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    store = out / "store"
    wl = [w for w in workloads if vt(version) >= vt(WORKLOADS[w][1])]
    # in WORKLOADS order (MIRROR needs LIM_SUBJ); time-sensitive ones last, so
    # that they are as young as possible at the stop
    order = list(WORKLOADS)
    wl.sort(key=lambda w: (w in TIME_SENSITIVE, order.index(w)))
    log: list = []
    srv = nb.NatsServer(binary, store, work_dir=out / "build", jetstream_extra=server_extra())
    srv.start()
    try:
        asyncio.run(run_phase(srv.url, version, 1, wl, log))
    finally:
        srv.stop()
    save_index_files(store, out / "stale")
    srv = nb.NatsServer(binary, store, work_dir=out / "build2", jetstream_extra=server_extra())
    srv.start()
    info: dict = {"mode": mode, "workloads": wl, "log": log}
    try:
        asyncio.run(run_phase(srv.url, version, 2, wl, log))
        info["built_at"] = time.time()  # AGE/TTL were published just before this
        if mode == "clean":
            srv.stop()
        elif mode == "kill_idle":
            time.sleep(1.5)
            os.kill(srv.pid, signal.SIGKILL)
            srv.proc.wait()
        elif mode == "kill_mid":
            import threading

            box: dict = {}

            def pub():
                box["n"] = asyncio.run(flood(srv.url, 1.5))

            th = threading.Thread(target=pub)
            th.start()
            time.sleep(0.8)
            os.kill(srv.pid, signal.SIGKILL)
            srv.proc.wait()
            th.join()
            info["flood_published"] = box.get("n")
        else:
            raise ValueError(mode)
    except BaseException:
        if srv.proc and srv.proc.poll() is None:
            srv.stop()
        raise
    (out / "build.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


# --------------------------------------------------------------------------
# record-level parsing of plain blocks (for targeted damage)
# --------------------------------------------------------------------------

HBIT = 0x80000000
EBIT = 1 << 63
TBIT = 1 << 62


def records(buf: bytes) -> list[dict]:
    """Records of an uncompressed, unencrypted block, until the first one that
    does not frame."""
    out = []
    off = 0
    while off + 22 <= len(buf):
        rl_raw, seq_raw, ts, slen = struct.unpack_from("<IQqH", buf, off)
        rl = rl_raw & ~HBIT
        if rl < 30 or off + rl > len(buf):
            break
        hbit = bool(rl_raw & HBIT)
        r = {"off": off, "rl": rl, "hbit": hbit, "seq": seq_raw & ~(EBIT | TBIT),
             "erased": bool(seq_raw & EBIT), "tomb": bool(seq_raw & TBIT), "slen": slen,
             "subj_off": off + 22}
        p = off + 22 + slen
        if hbit:
            (hlen,) = struct.unpack_from("<I", buf, p)
            r["hdr_off"] = p + 4
            r["hlen"] = hlen
            p += 4 + hlen
        r["payload_off"] = p
        r["payload_len"] = off + rl - 8 - p
        r["cksum_off"] = off + rl - 8
        out.append(r)
        off += rl
    return out


def blocks(sd: Path) -> list[Path]:
    return sorted((sd / "msgs").glob("*.blk"), key=lambda p: int(p.stem))


def is_compressed(p: Path) -> bool:
    if ENC:
        # compressed, then encrypted: only the stream's config tells; the server compresses
        # a block once it is full, so every block of CMP but its last
        return p.parent.parent.name == "CMP" and p != blocks(p.parent.parent)[-1]
    with open(p, "rb") as f:
        return f.read(4) == b"cmp\x01"


TOMB_LEN = 30  # a tombstone: 22-byte head, no subject, header or payload, 8-byte checksum


def dumped_records(p: Path) -> list[dict]:
    """The records of block file `p` of an encrypted stream, from `jetdir dump --json
    --include-deleted` of its stream dir (every message record, deleted or not, with its
    offset and length); what lies between them is tombstones (30 bytes each, seq unknown)."""
    sd = p.parent.parent
    o = subprocess.run([ENC["jetdir"], "dump", "--json", "--include-deleted", "--no-progress",
                        "--payload", "none", *key_args(), str(sd)],
                       capture_output=True, text=True, timeout=600)
    msgs = []
    for line in o.stdout.splitlines():
        m = json.loads(line)
        if "seq" in m and m.get("file") == f"msgs/{p.name}":
            msgs.append(m)
    msgs.sort(key=lambda m: m["offset"])
    out, at = [], 0
    for m in msgs:
        while m["offset"] - at >= TOMB_LEN:
            out.append({"off": at, "rl": TOMB_LEN, "hbit": False, "seq": None, "erased": False,
                        "tomb": True, "slen": 0, "subj_off": at + 22, "payload_off": at + 22,
                        "payload_len": 0, "cksum_off": at + 22})
            at += TOMB_LEN
        off, rl = m["offset"], m["size"]
        slen = len(m["subject"].encode())
        extra = rl - 30 - slen - m["payload_size"]  # the header block and its length, if any
        r = {"off": off, "rl": rl, "hbit": extra > 0, "seq": m["seq"],
             "erased": m.get("deleted") == "erased", "tomb": False, "slen": slen,
             "subj_off": off + 22}
        q = off + 22 + slen
        if extra > 0:
            r["hdr_off"], r["hlen"] = q + 4, extra - 4
            q += extra
        r["payload_off"], r["payload_len"], r["cksum_off"] = q, m["payload_size"], off + rl - 8
        out.append(r)
        at = off + rl
    size = p.stat().st_size
    while size - at >= TOMB_LEN:
        out.append({"off": at, "rl": TOMB_LEN, "hbit": False, "seq": None, "erased": False,
                    "tomb": True, "slen": 0, "subj_off": at + 22, "payload_off": at + 22,
                    "payload_len": 0, "cksum_off": at + 22})
        at += TOMB_LEN
    return out


def block_records(p: Path) -> list[dict]:
    """The records of block file `p` (uncompressed), as `records` gives them."""
    return dumped_records(p) if ENC else records(p.read_bytes())


def live_records(p: Path) -> list[dict]:
    return [r for r in block_records(p) if not r["erased"] and not r["tomb"]]


def flip(p: Path, off: int, mask: int = 0x01) -> str:
    b = bytearray(p.read_bytes())
    old = b[off]
    b[off] ^= mask
    p.write_bytes(bytes(b))
    return f"{p.name}@{off}: {old:02x}->{b[off]:02x}"


# --------------------------------------------------------------------------
# failures: fn(store, ctx) -> description (raise Skip when not applicable)
# --------------------------------------------------------------------------


class Skip(Exception):
    pass


def sdir(store: Path, name: str = "PLAIN") -> Path:
    sd = stream_dirs(store).get(name)
    if sd is None:
        raise Skip(f"no stream {name}")
    return sd


def target_record(sd: Path, want_hdr: bool = False) -> tuple[Path, dict]:
    """A live record in the middle of the second block (the first non-last
    block that is not the first); with headers if want_hdr."""
    bl = blocks(sd)
    if len(bl) < 3:
        raise Skip(f"{sd.name} has {len(bl)} blocks")
    p = bl[1]
    if is_compressed(p):
        raise Skip("compressed block")
    recs = live_records(p)
    if want_hdr:
        recs = [r for r in recs if r["hbit"]]
    if not recs:
        raise Skip("no suitable record")
    return p, recs[len(recs) // 2]


def f_none(store: Path, ctx: dict) -> str:
    return "no damage"


def f_expired(store: Path, ctx: dict) -> str:
    wait = ctx["built_at"] + AGE_S + 2 - time.time()
    if wait > 0:
        time.sleep(wait)
    return (f"no damage; restarted {AGE_S + 2}s+ after the build (AGE/TTL past their age); "
            "state read 3s after JetStream is up")


def last_block_record(sd: Path) -> tuple[Path, dict]:
    """The middle live record of the last block."""
    p = blocks(sd)[-1]
    recs = live_records(p)
    if not recs:
        raise Skip("no live record in the last block")
    return p, recs[len(recs) // 2]


def first_block_record(sd: Path, which: str) -> tuple[Path, dict]:
    """The first live record of the first block (`which` = "first": the stream's first
    message), or its middle one ("mid"), or the first live record of the second block
    ("second")."""
    bl = blocks(sd)
    if len(bl) < 3:
        raise Skip(f"{sd.name} has {len(bl)} blocks")
    p = bl[1] if which == "second" else bl[0]
    if which == "second":
        which = "first"
    if is_compressed(p):
        raise Skip("compressed block")
    recs = live_records(p)
    if not recs:
        raise Skip("no live record in the first block")
    return p, recs[0] if which == "first" else recs[len(recs) // 2]


def mk_flip(field: str, noidx: bool = False, last: bool = False,
            first: Optional[str] = None) -> Callable:
    def f(store: Path, ctx: dict) -> str:
        sd = sdir(store)
        if first:
            p, r = first_block_record(sd, first)
        elif last:
            p, r = last_block_record(sd)
        else:
            p, r = target_record(sd, want_hdr=(field in ("hdr", "hdrlen")))
        off = {
            "len": r["off"],
            "len_hi": r["off"] + 2,
            "seq": r["off"] + 4,
            "ts": r["off"] + 12,
            "subjlen": r["off"] + 20,
            "subj": r["subj_off"],
            "hdr": r.get("hdr_off", 0) + r.get("hlen", 0) // 2,
            "hdrlen": r.get("hdr_off", 4) - 4,  # low byte of the u32 header length
            "payload": r["payload_off"] + r["payload_len"] // 2,
            "cksum": r["cksum_off"],
        }[field]
        d = f"PLAIN seq {r['seq']} {field}: " + flip(p, off)
        if noidx:
            d += "; " + drop_index(sd)
        return d

    return f


def drop_index(sd: Path) -> str:
    gone = []
    for f in sorted((sd / "msgs").glob("*")):
        if f.name == "index.db" or f.suffix in (".idx", ".fss"):
            f.unlink()
            gone.append(f.name)
    return "removed " + (",".join(gone) or "nothing")


def f_idx_missing(store: Path, ctx: dict) -> str:
    return "; ".join(f"{n}: {drop_index(sd)}" for n, sd in stream_dirs(store).items())


def f_idx_stale(store: Path, ctx: dict) -> str:
    out = []
    for name in ("PLAIN", "CMP", "KV_cfg", "LIM_MSGS", "LIM_SUBJ"):
        src = ctx["build_dir"] / "stale" / name
        sd = stream_dirs(store).get(name)
        if sd is None or not src.is_dir():
            continue
        drop_index(sd)
        for f in sorted(src.iterdir()):
            shutil.copy2(f, sd / "msgs" / f.name)
        out.append(f"{name}: phase-1 " + ",".join(f.name for f in sorted(src.iterdir())))
    if not out:
        raise Skip("no phase-1 index files")
    return "; ".join(out)


def f_idx_damaged(store: Path, ctx: dict) -> str:
    sd = sdir(store)
    p = sd / "msgs" / "index.db"
    if not p.exists():
        idx = sorted((sd / "msgs").glob("*.idx"))
        if not idx:
            raise Skip("no index")
        p = idx[0]
        return "PLAIN " + flip(p, min(15, p.stat().st_size - 1))
    return "PLAIN " + flip(p, p.stat().st_size // 2)


def f_blk_missing(store: Path, ctx: dict) -> str:
    sd = sdir(store)
    bl = blocks(sd)
    if len(bl) < 3:
        raise Skip("fewer than 3 blocks")
    p = bl[1]
    gone = [p.name]
    p.unlink()
    for ext in (".idx", ".fss"):
        q = p.with_suffix(ext)
        if q.exists():
            q.unlink()
            gone.append(q.name)
    return "PLAIN removed " + ",".join(gone)


def f_blk_missing_last(store: Path, ctx: dict, noidx: bool = False) -> str:
    sd = sdir(store)
    p = blocks(sd)[-1]
    p.unlink()
    gone = [p.name]
    for ext in (".idx", ".fss"):
        q = p.with_suffix(ext)
        if q.exists():
            q.unlink()
            gone.append(q.name)
    d = "PLAIN removed " + ",".join(gone)
    if noidx:
        d += "; " + drop_index(sd)
    return d


def mk_trunc(which: str, inside: bool, noidx: bool = False) -> Callable:
    def f(store: Path, ctx: dict) -> str:
        sd = sdir(store)
        bl = blocks(sd)
        p = bl[1] if which == "mid" else bl[-1]
        if len(bl) < 3 and which == "mid":
            raise Skip("fewer than 3 blocks")
        recs = block_records(p)
        if len(recs) < 2:
            raise Skip("block has fewer than 2 records")
        r = recs[len(recs) // 2] if which == "mid" else recs[-3 if len(recs) >= 3 else -1]
        at = r["off"] + (r["rl"] // 2 if inside else 0)
        size = p.stat().st_size
        os.truncate(p, at)
        d = (f"PLAIN {p.name} truncated {size}->{at} "
             f"({'inside' if inside else 'at start of'} seq {r['seq']}"
             f"{' tombstone' if r['tomb'] else ''})")
        if noidx:
            d += "; " + drop_index(sd)
        return d

    return f


def mk_trunc_zero(which: str) -> Callable:
    """A block file emptied (0 bytes): the first block ("first") or the second ("mid")."""
    def f(store: Path, ctx: dict) -> str:
        sd = sdir(store)
        bl = blocks(sd)
        if len(bl) < 3:
            raise Skip("fewer than 3 blocks")
        p = bl[0] if which == "first" else bl[1]
        size = p.stat().st_size
        os.truncate(p, 0)
        return f"PLAIN {p.name} truncated {size}->0"

    return f


def mk_zeros(which: str, how: str, noidx: bool = False) -> Callable:
    """What a power loss leaves of a block whose data had not reached the disk (a file system
    that logs sizes before data: ext4 without data=ordered, XFS): `tail`, 4096 zero bytes past
    its end; `page`, the 4 KiB page holding its middle zeros; `all`, every byte zero (its size
    kept). `which`: the last block or the second ("mid")."""
    def f(store: Path, ctx: dict) -> str:
        sd = sdir(store)
        bl = blocks(sd)
        if which == "mid" and len(bl) < 3:
            raise Skip("fewer than 3 blocks")
        p = bl[1] if which == "mid" else bl[-1]
        size = p.stat().st_size
        if how == "tail":
            with open(p, "ab") as fh:
                fh.write(bytes(4096))
            d = f"PLAIN {p.name} {size}->{size + 4096} bytes (4096 zeros appended)"
        else:
            lo, hi = (0, size) if how == "all" else ((size // 2) & ~4095, min(size, ((size // 2) & ~4095) + 4096))
            b = bytearray(p.read_bytes())
            b[lo:hi] = bytes(hi - lo)
            p.write_bytes(bytes(b))
            d = f"PLAIN {p.name} bytes {lo}..{hi} of {size} zeroed"
        return d + ("; " + drop_index(sd) if noidx else "")

    return f


def f_cmp_flip(store: Path, ctx: dict, noidx: bool = False) -> str:
    sd = sdir(store, "CMP")
    bl = [p for p in blocks(sd) if is_compressed(p)]
    if not bl:
        raise Skip("no compressed block")
    p = bl[0]
    d = "CMP " + flip(p, p.stat().st_size // 2)
    return d + ("; " + drop_index(sd) if noidx else "")


def f_cmp_trunc(store: Path, ctx: dict, noidx: bool = False) -> str:
    sd = sdir(store, "CMP")
    bl = [p for p in blocks(sd) if is_compressed(p)]
    if not bl:
        raise Skip("no compressed block")
    p = bl[0]
    size = p.stat().st_size
    os.truncate(p, size // 2)
    d = f"CMP {p.name} truncated {size}->{size // 2}"
    return d + ("; " + drop_index(sd) if noidx else "")


def f_consumer_past(store: Path, ctx: dict) -> str:
    """Last two blocks of PLAIN and its index removed: consumers have delivered
    past the stream's new last sequence."""
    sd = sdir(store)
    bl = blocks(sd)
    gone = []
    for p in bl[-2:]:
        p.unlink()
        gone.append(p.name)
    return "PLAIN removed " + ",".join(gone) + "; " + drop_index(sd)


def f_odat_flip(store: Path, ctx: dict) -> str:
    sd = sdir(store)
    p = sd / "obs" / "C_EXPL" / "o.dat"
    if not p.exists():
        raise Skip("no o.dat")
    return "PLAIN consumer C_EXPL " + flip(p, p.stat().st_size // 2)


def mk_cmeta_edit(how: str) -> Callable:
    """C_EXPL's meta.inf (plaintext) with a config the release may not support: an unknown
    field, or a required API level above every release's (`_nats.req.level` 99). 2.11.9+
    register the consumer offline and stop its stream ("stopped - unsupported consumer");
    earlier releases load it (they drop the field; the level is not checked before 2.11.9).
    `new_value`: a priority policy of 2.12 (`prioritized`), which 2.11 cannot decode.
    meta.sum is left as it was: no release checks a consumer's."""
    def f(store: Path, ctx: dict) -> str:
        p = sdir(store) / "obs" / "C_EXPL" / "meta.inf"
        if (p.parent / "meta.key").exists():
            raise Skip("encrypted consumer config")
        m = json.loads(p.read_bytes())
        if how == "unknown_field":
            m["x_jetdir_unknown"] = True
            d = 'field "x_jetdir_unknown" added'
        elif how == "new_value":
            # a value 2.12+ write (a priority group consumer) that 2.11 cannot decode: it
            # does not load the consumer, and loads the stream without it
            m["priority_policy"] = "prioritized"
            m["priority_groups"] = ["g"]
            d = '"priority_policy": "prioritized" (2.12+) set'
        else:
            m.setdefault("metadata", {})["_nats.req.level"] = "99"
            d = '"_nats.req.level": "99" added to its metadata'
        p.write_bytes(json.dumps(m).encode())
        return f"PLAIN consumer C_EXPL meta.inf: {d}"

    return f


def f_meta_sum_bad(store: Path, ctx: dict) -> str:
    sd = sdir(store)
    return "PLAIN " + flip(sd / "meta.sum", 0)


def mk_zero_file(which: str) -> Callable:
    """A small state file of PLAIN all zeros at its size (what a power loss leaves of a file
    rewritten just before it): `index` (index.db, or 2.9's first .idx), `meta` (meta.inf),
    `odat` / `cmeta` (C_EXPL's o.dat / meta.inf)."""
    def f(store: Path, ctx: dict) -> str:
        sd = sdir(store)
        p = {"index": sd / "msgs" / "index.db", "meta": sd / "meta.inf",
             "odat": sd / "obs" / "C_EXPL" / "o.dat",
             "cmeta": sd / "obs" / "C_EXPL" / "meta.inf"}[which]
        if which == "index" and not p.exists():
            idx = sorted((sd / "msgs").glob("*.idx"))
            if not idx:
                raise Skip("no index")
            p = idx[0]
        if not p.exists():
            raise Skip(f"no {p.name}")
        n = p.stat().st_size
        p.write_bytes(bytes(n))
        return f"PLAIN {p.relative_to(sd)} zeroed ({n} bytes)"

    return f


def mk_aux_damage(which: str, how: str) -> Callable:
    """An auxiliary state file damaged: `thw` (TTL's msgs/thw.db, the TTL hash wheel), `sched`
    (SCHED's msgs/sched.db, 2.12+), `sources` (SRC's sources.db); `zero` (zeroed at its size),
    `cut` (its second half gone), `gone` (removed) or `count` (its header's entry count set to
    2^40: releases before 2.12.12 / 2.14.3 walk it at start and do not get past it)."""
    stream, rel = {"thw": ("TTL", "msgs/thw.db"), "sched": ("SCHED", "msgs/sched.db"),
                   "sources": ("SRC", "sources.db")}[which]

    def f(store: Path, ctx: dict) -> str:
        p = sdir(store, stream) / rel
        if not p.exists():
            raise Skip(f"no {stream}/{rel}")
        n = p.stat().st_size
        if how == "zero":
            p.write_bytes(bytes(n))
        elif how == "count":
            b = bytearray(p.read_bytes())
            b[1:9] = (1 << 40).to_bytes(8, "little")
            p.write_bytes(bytes(b))
        elif how == "cut":
            p.write_bytes(p.read_bytes()[: n // 2])
        else:
            p.unlink()
        return f"{stream} {rel} {how} ({n} bytes)"

    return f


def f_first_blk_empty(store: Path, ctx: dict) -> str:
    sd = sdir(store)
    p = blocks(sd)[0]
    size = p.stat().st_size
    os.truncate(p, 0)
    return f"PLAIN {p.name} truncated {size}->0; " + drop_index(sd)


def f_lost_tombstones(store: Path, ctx: dict) -> str:
    """Cut the last block of PLAIN just before its first tombstone (deletes of
    earlier blocks' messages are recorded there)."""
    sd = sdir(store)
    p = blocks(sd)[-1]
    recs = block_records(p)
    tombs = [r for r in recs if r["tomb"]]
    if not tombs:
        raise Skip("no tombstone in the last block")
    at = tombs[0]["off"]
    size = p.stat().st_size
    os.truncate(p, at)
    return (f"PLAIN {p.name} truncated {size}->{at} before tombstone for seq {tombs[0]['seq']} "
            f"(cut {sum(1 for r in recs if r['off'] >= at)} records, "
            f"{sum(1 for r in recs if r['off'] >= at and r['tomb'])} tombstones)")


def f_idx_from_prev(store: Path, ctx: dict) -> str:
    """PLAIN's index.db replaced by the one the previous release wrote for the same
    workload (same sequences, other timestamps/checksums, maybe another index.db
    version)."""
    v = ctx["version"]
    if v not in nb.RELEASES or nb.RELEASES.index(v) == 0:
        raise Skip("no previous release")
    prev = nb.RELEASES[nb.RELEASES.index(v) - 1]
    src = ctx["out"] / prev / "_build_clean" / "store" / "jetstream" / "$G" / "streams" / \
        "PLAIN" / "msgs" / "index.db"
    if not src.exists():
        raise Skip(f"no index.db from {prev} in this run")
    sd = sdir(store)
    dst = sd / "msgs" / "index.db"
    if not dst.exists():
        raise Skip("this release writes no index.db")
    with open(src, "rb") as f:
        hdr = f.read(2)
    with open(dst, "rb") as f:
        own = f.read(2)
    shutil.copy2(src, dst)
    return f"PLAIN index.db replaced by {prev}'s (version byte {hdr[1]}, own {own[1]})"


# name -> (fn, build mode)
FAILURES: dict[str, tuple[Callable, str]] = {
    "clean": (f_none, "clean"),
    "kill_idle": (f_none, "kill_idle"),
    "kill_mid": (f_none, "kill_mid"),
    "idx_missing": (f_idx_missing, "clean"),
    "idx_stale": (f_idx_stale, "clean"),
    "idx_damaged": (f_idx_damaged, "clean"),
    "blk_missing_mid": (f_blk_missing, "clean"),
    "blk_missing_last": (f_blk_missing_last, "clean"),
    "consumer_past": (f_consumer_past, "clean"),
    "trunc_mid_at_rec": (mk_trunc("mid", False), "clean"),
    "trunc_mid_in_rec": (mk_trunc("mid", True), "clean"),
    "trunc_last_at_rec": (mk_trunc("last", False), "clean"),
    "trunc_last_in_rec": (mk_trunc("last", True), "clean"),
    "trunc_mid_at_rec+noidx": (mk_trunc("mid", False, True), "clean"),
    "trunc_last_in_rec+noidx": (mk_trunc("last", True, True), "clean"),
    **{f"flip_{fld}": (mk_flip(fld), "clean")
       for fld in ("len", "len_hi", "seq", "ts", "subjlen", "subj", "hdrlen", "hdr", "payload",
                   "cksum")},
    **{f"flip_{fld}+noidx": (mk_flip(fld, True), "clean")
       for fld in ("len", "len_hi", "seq", "ts", "subjlen", "subj", "hdrlen", "hdr", "payload",
                   "cksum")},
    **{f"flip_last_{fld}": (mk_flip(fld, last=True), "clean")
       for fld in ("len", "seq", "payload", "cksum")},
    **{f"flip_last_{fld}+noidx": (mk_flip(fld, True, last=True), "clean")
       for fld in ("len", "payload")},
    # the first block (the stream's first message; a record in its middle)
    **{f"flip_first_{fld}": (mk_flip(fld, first="first"), "clean")
       for fld in ("len", "payload")},
    "flip_first_mid_len": (mk_flip("len", first="mid"), "clean"),
    "flip_second_first_len": (mk_flip("len", first="second"), "clean"),
    "trunc_first_zero": (mk_trunc_zero("first"), "clean"),
    "trunc_mid_zero": (mk_trunc_zero("mid"), "clean"),
    "flip_first_len+noidx": (mk_flip("len", True, first="first"), "clean"),
    # what a power loss leaves: zeros where data had not reached the disk
    **{f"zero_{w}_{how}{'+noidx' if n else ''}": (mk_zeros(w, how, n), "clean")
       for w in ("last", "mid") for how in ("tail", "page", "all") for n in (False, True)
       if not (w == "mid" and how == "tail")},
    "lost_tombstones": (f_lost_tombstones, "clean"),
    "first_blk_empty+noidx": (f_first_blk_empty, "clean"),
    "odat_flip": (f_odat_flip, "clean"),
    "meta_sum_bad": (f_meta_sum_bad, "clean"),
    "cmeta_unknown_field": (mk_cmeta_edit("unknown_field"), "clean"),
    "cmeta_req_level": (mk_cmeta_edit("req_level"), "clean"),
    "cmeta_new_value": (mk_cmeta_edit("new_value"), "clean"),
    **{f"zero_{w}_file": (mk_zero_file(w), "clean") for w in ("index", "meta", "odat", "cmeta")},
    **{f"aux_{w}_{how}": (mk_aux_damage(w, how), "clean")
       for w in ("thw", "sched", "sources") for how in ("zero", "cut", "gone")},
    "aux_thw_count": (mk_aux_damage("thw", "count"), "clean"),
    "idx_from_prev_release": (f_idx_from_prev, "clean"),
    "cmp_flip": (f_cmp_flip, "clean"),
    "cmp_trunc": (f_cmp_trunc, "clean"),
    "cmp_flip+noidx": (lambda st, c: f_cmp_flip(st, c, True), "clean"),
    "cmp_trunc+noidx": (lambda st, c: f_cmp_trunc(st, c, True), "clean"),
    "expired": (f_expired, "clean"),
    # the store was written by another release (clean stop), loaded by this one
    "from_prev_release": (f_none, "from_prev"),
    "from_2.9.10": (f_none, "from_2.9.10"),
    # a store 2.10.26 wrote (index.db version 1, no o.dat for consumers that never
    # delivered), loaded by each later release ...
    "from_2.10.26": (f_none, "from_2.10.26"),
    # ... and without its index.db: 2.10.26 writes the erase-damaged CMP block (M3), which
    # later releases rebuild or refuse each in their own way
    "from_2.10.26+noidx": (f_idx_missing, "from_2.10.26"),
    # downgrades: the store the next newer release of the matrix wrote (clean stop), and the
    # one the newest wrote, loaded by this one (a rollback after an upgrade)
    "from_next_release": (f_none, "from_next"),
    "from_2.15.1": (f_none, "from_2.15.1"),
}

DOWNGRADES = {"from_next", "from_2.15.1"}


def key_file_of(sd: Path, p: Path) -> Path:
    k = p.with_suffix(".key")
    if not k.exists():
        raise Skip(f"no {k.name} (not encrypted)")
    return k


def mk_key_damage(which: str, how: str, noidx: bool = False) -> Callable:
    """A block's key file (`msgs/N.key`: the block's cipher seed, sealed with the stream's
    key) removed or with one byte flipped."""
    def f(store: Path, ctx: dict) -> str:
        sd = sdir(store)
        bl = blocks(sd)
        if which == "mid" and len(bl) < 3:
            raise Skip("fewer than 3 blocks")
        if which == "first" and len(bl) < 3:
            raise Skip("fewer than 3 blocks")
        k = key_file_of(sd, {"first": bl[0], "mid": bl[1] if len(bl) > 1 else bl[0]}.get(which, bl[-1]))
        if how == "missing":
            k.unlink()
            d = f"PLAIN removed {k.name}"
        else:
            d = "PLAIN " + flip(k, k.stat().st_size // 2)
        return d + ("; " + drop_index(sd) if noidx else "")

    return f


def f_meta_key_flip(store: Path, ctx: dict) -> str:
    sd = sdir(store)
    k = sd / "meta.key"
    if not k.exists():
        raise Skip("no meta.key (not encrypted)")
    return "PLAIN " + flip(k, k.stat().st_size // 2)


def mk_consumer_flip(name: str) -> Callable:
    """C_EXPL's `name` (meta.key: its key; meta.inf: its sealed config) with a byte flipped."""
    def f(store: Path, ctx: dict) -> str:
        p = sdir(store) / "obs" / "C_EXPL" / name
        if not p.exists() or not (p.parent / "meta.key").exists():
            raise Skip(f"no {name} (not encrypted)")
        return "PLAIN consumer C_EXPL " + flip(p, p.stat().st_size // 2)

    return f


# only with --cipher
ENC_FAILURES: dict[str, tuple[Callable, str]] = {
    "key_missing_mid": (mk_key_damage("mid", "missing"), "clean"),
    "key_missing_mid+noidx": (mk_key_damage("mid", "missing", True), "clean"),
    "key_flip_mid": (mk_key_damage("mid", "flip"), "clean"),
    "key_flip_mid+noidx": (mk_key_damage("mid", "flip", True), "clean"),
    "key_missing_first": (mk_key_damage("first", "missing"), "clean"),
    "key_flip_first": (mk_key_damage("first", "flip"), "clean"),
    "key_missing_last": (mk_key_damage("last", "missing"), "clean"),
    "key_flip_last": (mk_key_damage("last", "flip"), "clean"),
    "meta_key_flip": (f_meta_key_flip, "clean"),
    "consumer_key_flip": (mk_consumer_flip("meta.key"), "clean"),
    "consumer_meta_flip": (mk_consumer_flip("meta.inf"), "clean"),
}
SAMPLE_RELEASES = ["2.9.10", "2.10.26", "2.11.11", "2.12.8", "2.15.1"]
SAMPLE_FAILURES = [
    "clean", "kill_mid", "flip_len+noidx", "idx_missing", "idx_stale", "flip_payload",
    "flip_payload+noidx", "flip_seq", "lost_tombstones", "trunc_last_in_rec+noidx", "expired",
    "flip_first_len", "zero_mid_page", "cmeta_unknown_field", "cmeta_new_value", "aux_sched_cut",
]


# --------------------------------------------------------------------------
# the server's truth after a restart on a copy
# --------------------------------------------------------------------------

LOG_LEVEL = re.compile(r"\[(WRN|ERR|FTL)\]")
MAX_GET = 600  # direct gets only for streams whose seq range is at most this


def parse_ts(s: Optional[str]) -> Optional[int]:
    """RFC3339 with nanoseconds -> ns since epoch; None for the zero time."""
    if not s or s.startswith("0001-01-01"):
        return None
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", s)
    if not m:
        return None
    base = dt.datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    frac = (m.group(2) or "").ljust(9, "0")[:9]
    return int(base.timestamp()) * 1_000_000_000 + int(frac)


async def live_seqs(nc, stream: str, asked) -> dict:
    """STREAM.MSG.GET of each sequence `asked`: those served, and errors other than 404."""
    seqs, errors = [], {}
    for seq in asked:
        try:
            r = await nb.js_api(nc, f"$JS.API.STREAM.MSG.GET.{stream}", {"seq": seq}, timeout=5)
            seqs.append(r["message"]["seq"])
        except nb.JsApiError as e:
            if e.error.get("code") != 404:
                errors[seq] = e.error
        except Exception as e:  # noqa: BLE001
            errors[seq] = repr(e)
    return {"seqs": seqs, "errors": errors}


async def consumer_infos(nc, stream: str, names) -> dict:
    """CONSUMER.INFO of each consumer named, or the error it answered."""
    out = {}
    for c in names:
        try:
            out[c] = await nb.consumer_info(nc, stream, c)
        except Exception as e:  # noqa: BLE001
            out[c] = {"error": repr(e)}
    return out


# the numbers a read that cuts (or rebuilds) a damaged block changes
AFTER_READS_FIELDS = ("messages", "bytes", "first_seq", "last_seq", "num_deleted", "subjects")


async def record_truth(url: str, skip_gets: set[str], settle: float = 0.0) -> dict:
    nc = await nb.connect(url)
    try:
        await nb.wait_jetstream(nc, timeout=60)
        if settle:
            await asyncio.sleep(settle)
        names = await nb.stream_names(nc)
        out = {}
        for n in names:
            try:
                info = await nb.stream_info(nc, n)
            except Exception as e:  # noqa: BLE001
                out[n] = {"error": repr(e)}
                continue
            try:
                cons = await consumer_infos(nc, n, await nb.consumer_names(nc, n))
            except Exception as e:  # noqa: BLE001
                cons = {"_error": repr(e)}
            st = info["state"]
            rec = {"state": st, "config": info.get("config"), "consumers": cons}
            if n not in skip_gets and 0 < st["last_seq"] - st["first_seq"] + 1 <= MAX_GET:
                first, last = st["first_seq"], st["last_seq"]
                rec["live"] = await live_seqs(
                    nc, n, range(first, last + 1) if last >= first > 0 else [])
                # A damaged block is cut (or 2.9 rebuilds it) when the server first reads it:
                # the read that does so answers "no message found", and STREAM.INFO before it
                # shows the index's numbers. jetdir reports the stream once every block has
                # been read, so each sequence not served is asked for once more, and the
                # state after the reads is kept when it differs.
                got = set(rec["live"]["seqs"])
                again = [q for q in range(first, last + 1)
                         if q not in got and q not in rec["live"]["errors"]]
                retry = (await live_seqs(nc, n, again))["seqs"]
                if retry:
                    rec["live"]["seqs"] = sorted(got | set(retry))
                    rec["live"]["served_on_second_read"] = retry
                after = (await nb.stream_info(nc, n))["state"]
                if any(after.get(k) != st.get(k) for k in AFTER_READS_FIELDS):
                    rec["state_after_reads"] = after
                    rec["consumers_after_reads"] = await consumer_infos(
                        nc, n, [c for c in cons if c != "_error"])
            out[n] = rec
        return out
    finally:
        await nc.close()


def server_truth(binary: str, store: Path, work: Path, settle: float = 0.0) -> dict:
    srv = nb.NatsServer(binary, store, work_dir=work, jetstream_extra=server_extra())
    t0 = time.time()
    truth: dict = {"restarted_at": t0}
    try:
        srv.start(timeout=60)
    except RuntimeError as e:
        truth["start_error"] = str(e)
        truth["log"] = [ln for ln in srv.log_tail(400).splitlines() if LOG_LEVEL.search(ln)]
        return truth
    try:
        truth["streams"] = asyncio.run(record_truth(srv.url, {"BIG"}, settle))
        truth["settle_s"] = settle
    except Exception as e:  # noqa: BLE001
        truth["error"] = repr(e)
    finally:
        truth["exit_code"] = srv.stop()
    text = srv.log_path.read_text(errors="replace")
    truth["log"] = [re.sub(r"^\[\d+\] \S+ \S+ ", "", ln) for ln in text.splitlines()
                    if LOG_LEVEL.search(ln)]
    truth["load_s"] = round(time.time() - t0, 2)
    return truth


# --------------------------------------------------------------------------
# jetdir and the comparison
# --------------------------------------------------------------------------


def run_jetdir(jetdir: str, store: Path, version: str, at: Optional[float] = None) -> dict:
    # the operator's question: what does this release (the one that wrote the store and is
    # restarted on it) do with these files; without index.db and _nats.ver the files alone
    # do not tell 2.10-2.12 from 2.14+
    # ... at the time the server was restarted (max_age and TTLs count from it)
    when = []
    if at is not None:
        when = ["--at", dt.datetime.fromtimestamp(at, dt.timezone.utc).isoformat()
                .replace("+00:00", "Z")]
    p = subprocess.run([jetdir, "verify", "--json", "--no-progress", "--server-version", version,
                        *when, *key_args(), str(store)],
                       capture_output=True, text=True, timeout=600)
    res: dict = {"exit": p.returncode, "stderr_tail": p.stderr[-2000:]}
    try:
        res["json"] = json.loads(p.stdout)
    except json.JSONDecodeError:
        res["stdout_head"] = p.stdout[:2000]
    return res


STREAM_FIELDS = [  # jetdir field, server state field
    ("messages", "messages"),
    ("bytes", "bytes"),
    ("first_seq", "first_seq"),
    ("last_seq", "last_seq"),
    ("deleted", "num_deleted"),
    ("subjects", "num_subjects"),
]
CONSUMER_FIELDS = [  # jetdir field, path in CONSUMER.INFO
    ("delivered_stream_seq", ("delivered", "stream_seq")),
    ("delivered_consumer_seq", ("delivered", "consumer_seq")),
    ("ack_floor_stream_seq", ("ack_floor", "stream_seq")),
    ("ack_floor_consumer_seq", ("ack_floor", "consumer_seq")),
    ("num_ack_pending", ("num_ack_pending",)),
    ("num_pending", ("num_pending",)),
    ("redelivered", ("num_redelivered",)),
]
NOT_REPORTED = [
    "consumer num_waiting / push-bound state",
    "message contents (only sequences are compared)",
    "STREAM.INFO lost {msgs, bytes}",
]


def dig(d: dict, path: tuple) -> Any:
    for k in path:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def compare_stream(j: Optional[dict], t: Optional[dict], release: str = "") -> dict:
    """{'diffs': [(field, jetdir, server)], 'compared': [...]}."""
    if j is None and t is None:
        return {"diffs": [], "compared": []}
    if j is None:
        return {"diffs": [("stream", "absent", "present")], "compared": ["stream"]}
    if t is None:
        if (j.get("load") or {}).get("verdict") == "skipped":
            return {"diffs": [], "compared": ["stream"]}  # listed, and predicted not loaded
        return {"diffs": [("stream", "present", "absent (not loaded)")], "compared": ["stream"]}
    if (j.get("load") or {}).get("verdict") == "skipped" and "error" not in t:
        # jetdir says the server does not load it, and it did
        return {"diffs": [("stream", "not loaded", "loaded")], "compared": ["stream"]}
    if "error" in t:
        if (j.get("load") or {}).get("verdict") == "skipped" and "stream is offline" in t["error"]:
            # listed offline (2.11.9+, a config it does not support), not loaded: as jetdir says
            return {"diffs": [], "compared": ["stream"]}
        return {"diffs": [("stream", "present", f"info error {t['error']}")], "compared": ["stream"]}
    # the stream once every block has been read (a damaged block is cut by its first read:
    # what jetdir reports), where the reads changed it
    st = t.get("state_after_reads") or t["state"]
    diffs, compared = [], []
    for jf, sf in STREAM_FIELDS:
        compared.append(jf)
        sv = st.get(sf, 0) or 0
        if j.get(jf) != sv:
            diffs.append((jf, j.get(jf), sv))
    # subject delete markers carry the wall clock of the expiry run right after the start;
    # jetdir stamps them with its --at (now): equal within the run's own duration
    marker_seqs = {m["seq"] for m in (j.get("load") or {}).get("markers") or []}
    for jf in ("first_ts", "last_ts"):
        sv = parse_ts(st.get(jf))
        jv = j.get(jf)
        at_seq = j.get("first_seq" if jf == "first_ts" else "last_seq")
        if at_seq in marker_seqs and jv is not None and sv is not None and abs(jv - sv) < 120e9:
            compared.append(jf)
            continue
        if jv == 0 and sv is None:
            # no time at all: jetdir's 0 and Go's zero time say the same
            jv = None
        if jv is None and sv is None:
            continue
        compared.append(jf)
        if jv != sv:
            diffs.append((jf, jv, sv))
    # deleted sequences: jetdir lists at most 1000; the server lists them all
    jd = j.get("deleted_seqs")
    if jd is not None and (j.get("deleted") or 0) <= 1000 and "deleted" in st:
        compared.append("deleted_seqs")
        sd = st.get("deleted") or []
        # as sets: the server may list a sequence twice (a block emptied at load lists its
        # whole range next to its delete map); the count is compared on its own (`deleted`)
        if set(jd) != set(sd):
            a, b = set(jd), set(sd)
            diffs.append(("deleted_seqs", summarize_set(a - b, "only jetdir"),
                          summarize_set(b - a, "only server")))
    sc = j.get("subject_counts")
    if sc is not None and "subjects" in st:
        compared.append("subject_counts")
        ss = st.get("subjects") or {}
        if sc != ss:
            keys = sorted(set(sc) | set(ss))
            bad = [k for k in keys if sc.get(k) != ss.get(k)]
            diffs.append(("subject_counts",
                          {k: sc.get(k) for k in bad[:5]} | ({"…": len(bad)} if len(bad) > 5 else {}),
                          {k: ss.get(k) for k in bad[:5]}))
    # live sequences from MSG.GET against jetdir's first..last minus deleted_seqs
    live = t.get("live")
    if live is not None and jd is not None and (j.get("deleted") or 0) <= 1000:
        compared.append("live_seqs")
        # (2.9 can report first 0 and serve from 1: M20)
        jl = set(range(max(j["first_seq"], 1), j["last_seq"] + 1)) - set(jd) \
            if j["first_seq"] is not None else set()
        # messages the server counts (trusted index.db) but cannot read
        for a, b in ((j.get("load") or {}).get("unreadable") or []):
            jl -= set(range(a, b + 1))
        # and messages jetdir says the load loses (2.9 does not list them as deleted)
        for a, b in ((j.get("load") or {}).get("lost") or []):
            jl -= set(range(a, b + 1))
        sl = set(live["seqs"])
        if jl != sl:
            diffs.append(("live_seqs", summarize_set(jl - sl, "only jetdir"),
                          summarize_set(sl - jl, "only server")))
    # consumers
    # a consumer jetdir says the server does not load is absent from its side
    jc = {c["name"]: c for c in j.get("consumers") or [] if c.get("loads", True)}
    tc = t.get("consumers_after_reads") or t.get("consumers") or {}
    for name in sorted(set(jc) | set(tc)):
        if name == "_error":
            diffs.append(("consumers", "listed", tc[name]))
            continue
        a, b = jc.get(name), tc.get(name)
        if a is None and b is not None and "consumer not found" in str(b.get("error", "")):
            continue  # listed by CONSUMER.NAMES but not loaded: absent on both sides
        if a is None or b is None or "error" in (b or {}):
            diffs.append((f"consumer {name}", "present" if a else "absent",
                          ("absent" if b is None else b.get("error", "present"))))
            continue
        for jf, path in CONSUMER_FIELDS:
            # 2.9's FilteredState with a wildcard filter takes the blocks' subjects in Go's
            # map order and stops at the first block it must read: not modelled (one filter
            # without wildcards is, and without a filter it is sequence arithmetic)
            fsub = (b.get("config") or {}).get("filter_subject") or ""
            if jf == "num_pending" and release.startswith("2.9.") and \
                    ("*" in fsub.split(".") or ">" in fsub.split(".")
                     or (b.get("config") or {}).get("filter_subjects")):
                continue
            compared.append(f"consumer.{jf}")
            if a.get(jf) != dig(b, path):
                diffs.append((f"{name}.{jf}", a.get(jf), dig(b, path)))
    return {"diffs": diffs, "compared": sorted(set(compared))}


def summarize_set(s: set, label: str) -> str:
    if not s:
        return f"{label}: none"
    xs = sorted(s)
    ranges = []
    start = prev = xs[0]
    for x in xs[1:]:
        if x == prev + 1:
            prev = x
            continue
        ranges.append((start, prev))
        start = prev = x
    ranges.append((start, prev))
    txt = ",".join(f"{a}" if a == b else f"{a}..{b}" for a, b in ranges[:8])
    if len(ranges) > 8:
        txt += f",…({len(xs)} total)"
    return f"{label}: {txt}"


def compare_case(jet: dict, truth: dict, time_sensitive_ok: bool, release: str = "") -> dict:
    res: dict = {"streams": {}}
    js = jet.get("json")
    if js is None or (jet["exit"] == 2 and not js.get("streams")):
        res["jetdir_error"] = (js or {}).get("error") or jet.get("stderr_tail", "")[-300:]
    if "start_error" in truth or "streams" not in truth:
        res["server_error"] = truth.get("start_error") or truth.get("error")
    if "start_error" in truth:
        # the server did not start: did jetdir say so? (a file the release does not get
        # past at start, and every stream of the store not loaded)
        kinds = {p.get("kind") for p in (js or {}).get("problems") or []}
        verdicts = {((s.get("load") or {}).get("verdict")) for s in (js or {}).get("streams") or []}
        res["start_predicted"] = "aux_file_stops_server" in kinds and verdicts <= {"skipped"}
    jstreams = {s["name"]: s for s in (js or {}).get("streams", []) if s.get("account") == "$G"}
    tstreams = truth.get("streams") or {}
    problems = (js or {}).get("problems") or []
    for name in sorted(set(jstreams) | set(tstreams)):
        base = name.split("_")[0] if name.startswith(("KV_", "OBJ_")) else name
        if base in TIME_SENSITIVE and not time_sensitive_ok:
            res["streams"][name] = {"skipped": "time-sensitive; restarted after expiry"}
            continue
        c = compare_stream(jstreams.get(name), tstreams.get(name), release)
        mine = [p for p in problems if p.get("stream") == name]
        c["jetdir_problems"] = sorted({f"{p['severity']}:{p['kind']}" for p in mine})
        # an error is the right severity when the server loses data on this load too
        ts = tstreams.get(name) or {}
        lost = (ts.get("state_after_reads") or ts.get("state") or {}).get("lost") or {}
        verdict = ((jstreams.get(name) or {}).get("load") or {}).get("verdict")
        if verdict == "loses_data" and (lost.get("msgs") or lost.get("bytes")):
            c["error_justified"] = True
        # or when messages jetdir calls unreadable are indeed not served
        unread = ((jstreams.get(name) or {}).get("load") or {}).get("unreadable") or []
        served = set(((tstreams.get(name) or {}).get("live") or {}).get("seqs") or [])
        if verdict == "loses_data" and unread and (tstreams.get(name) or {}).get("live") and not any(
                q in served for a, b in unread for q in range(a, b + 1)):
            c["error_justified"] = True
        # or when jetdir says the server does not load the stream, and it did not
        if verdict == "skipped" and (name not in tstreams or "stream is offline" in str(
                (tstreams.get(name) or {}).get("error", ""))):
            c["error_justified"] = True
        # or when the sequences jetdir calls lost are indeed gone (a block the rebuild drops)
        jlost = ((jstreams.get(name) or {}).get("load") or {}).get("lost") or []
        if verdict == "loses_data" and jlost and (tstreams.get(name) or {}).get("live") and not any(
                q in served for a, b in jlost for q in range(a, b + 1)):
            c["error_justified"] = True
        # or when the error is a consumer's whose state is lost as jetdir says: one it says the
        # server does not load and the server has not, or one loaded without its state
        # (delivered 2^64-1 on both sides)
        tcons = (tstreams.get(name) or {}).get("consumers") or {}
        for jc in (jstreams.get(name) or {}).get("consumers") or []:
            tc = tcons.get(jc["name"])
            gone = tc is None or "consumer not found" in str((tc or {}).get("error", ""))
            if jc.get("loads") is False and gone:
                c["error_justified"] = True
            if jc.get("delivered_stream_seq") == 2**64 - 1 and not gone and \
                    dig(tc, ("delivered", "stream_seq")) == 2**64 - 1:
                c["error_justified"] = True
        live = (tstreams.get(name) or {}).get("live") or {}
        if live.get("errors"):
            c["server_get_errors"] = {str(k): v for k, v in list(live["errors"].items())[:5]}
        res["streams"][name] = c
    res["jetdir_exit"] = jet.get("exit")
    res["server_log"] = truth.get("log", [])
    return res


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------


def run_case(binary: str, version: str, build_dir: Path, build_info: dict, failure: str,
             out: Path, jetdir: str) -> dict:
    fn, _mode = FAILURES[failure]
    case = out / version / failure.replace("+", "_")
    shutil.rmtree(case, ignore_errors=True)
    case.mkdir(parents=True)
    store = case / "store"
    shutil.copytree(build_dir / "store", store, symlinks=True)
    ctx = {**build_info, "build_dir": build_dir, "version": version, "out": out}
    try:
        desc = fn(store, ctx)
    except Skip as e:
        shutil.rmtree(case)
        return {"release": version, "failure": failure, "skipped": str(e)}
    restart = case / "restart-store"
    shutil.copytree(store, restart, symlinks=True)
    # `expired`: TTL expiry runs after the load, asynchronously; give it 3s. 2.9: consumers'
    # pending acks below the first seq are dropped when the pending timer first fires, 0.5 to
    # 1.5 s after the start (`checkPending`); the state the model gives is the one after it
    settle = 3.0 if failure == "expired" else 2.0 if version.startswith("2.9.") else 0.0
    truth = server_truth(binary, restart, case / "restart", settle=settle)
    truth["damage"] = desc
    (case / "truth.json").write_text(json.dumps(truth, indent=1, default=str) + "\n")
    shutil.rmtree(restart, ignore_errors=True)
    jet = run_jetdir(jetdir, store, version, truth.get("restarted_at"))
    (case / "jetdir.json").write_text(json.dumps(jet, indent=1) + "\n")
    # (the settle counts: 2.9's 2 s had AGE expire while the first rows of a short run waited)
    ts_ok = failure == "expired" or \
        truth["restarted_at"] + settle - build_info["built_at"] < AGE_S - 1
    cmp = compare_case(jet, truth, ts_ok, version)
    cmp.update({"release": version, "failure": failure, "damage": desc,
                "secs_after_build": round(truth["restarted_at"] - build_info["built_at"], 1)})
    (case / "compare.json").write_text(json.dumps(cmp, indent=1, default=str) + "\n")
    return cmp


def fmt_val(v: Any) -> str:
    s = json.dumps(v, default=str) if not isinstance(v, str) else v
    return s if len(s) <= 160 else s[:157] + "…"


ABBREV = {"messages": "msgs", "bytes": "bytes", "first_seq": "first", "last_seq": "last",
          "deleted": "del", "deleted_seqs": "dseqs", "subjects": "nsubj",
          "subject_counts": "subjc", "live_seqs": "live", "first_ts": "fts", "last_ts": "lts",
          "stream": "STREAM"}


def abbrev(field: str) -> str:
    if field in ABBREV:
        return ABBREV[field]
    return "cons"  # consumer fields and presence


def cell(c: dict) -> str:
    if "skipped" in c:
        return "skip"
    if c.get("as_clean"):
        return "as clean"
    if c.get("diffs"):
        fields = {abbrev(d[0]) for d in c["diffs"]}
        order = list(ABBREV.values()) + ["cons"]
        return "**≠** " + ",".join(sorted(fields, key=order.index))
    errs = [p for p in c.get("jetdir_problems", []) if p.startswith("error:")]
    if errs and c.get("error_justified"):
        return "ok (loss)"
    return "ok" + (" (jetdir err)" if errs else "")


def summary_table(results: list[dict], releases: list[str]) -> list[str]:
    """failure x release; a cell lists the streams that disagree."""
    failures = []
    for r in results:
        if r["failure"] not in failures:
            failures.append(r["failure"])
    by = {(r["release"], r["failure"]): r for r in results}
    lines = ["## Summary (streams where jetdir and the server disagree)", "",
             "Streams whose disagreement is the same as in the release's `clean` row are "
             "not repeated in the other rows. `(Unprocessed)`: only consumers' `num_pending` "
             "differs (the server counts it from its index state, which damage leaves "
             "inconsistent).", "",
             "| failure | " + " | ".join(releases) + " |", "|---|" + "---|" * len(releases)]
    for f in failures:
        cells = []
        for v in releases:
            r = by.get((v, f))
            if r is None:
                cells.append("")
            elif "skipped" in r:
                cells.append("n/a")
            elif r.get("start_predicted"):
                cells.append("no start, as jetdir says")
            elif r.get("server_error"):
                cells.append("**server error**")
            elif r.get("jetdir_error"):
                cells.append("jetdir error")
            else:
                bad = [s + (" (Unprocessed)" if all(d[0].endswith(".num_pending")
                                                    for d in c["diffs"]) else "")
                       for s, c in r["streams"].items()
                       if c.get("diffs") and not c.get("as_clean")]
                cells.append("≠ " + ", ".join(bad) if bad else "ok")
        lines.append(f"| {f} | " + " | ".join(cells) + " |")
    return lines + [""]


def mark_as_clean(results: list[dict]) -> None:
    """A stream whose disagreement in a row is exactly the one of the same
    release's `clean` row (same fields, same values) is marked as_clean, so
    that the tables show what the failure changed."""
    clean = {r["release"]: r for r in results if r["failure"] == "clean" and "streams" in r}
    for r in results:
        base = clean.get(r["release"])
        if base is None or r is base or "streams" not in r:
            continue
        for s, c in r["streams"].items():
            b = base["streams"].get(s) or {}
            if c.get("diffs") and json.dumps(c["diffs"], default=str) == json.dumps(
                    b.get("diffs"), default=str):
                c["as_clean"] = True


def write_results(results: list[dict], path: Path, releases: list[str], mode: str,
                  took: float, jetdir_rev: str) -> None:
    mark_as_clean(results)
    done = [r for r in results if "skipped" not in r]
    streams = sorted({s for r in done for s in r["streams"]})
    lines = [
        "# Differential matrix: `jetdir verify --json` against the real server's load",
        "",
        f"Generated {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by "
        f"`scripts/matrix.sh --{mode}` (tests/support/matrix.py) in {took / 60:.1f} min; "
        f"jetdir at {jetdir_rev}; releases: {', '.join(releases)}.",
        "",
        "Each row: a store built by that release (all workloads it supports), one failure "
        "applied to a copy, the same release restarted on a second copy. The stream's "
        "numbers are STREAM.INFO's after those reads where they changed it (a damaged block "
        "is cut when the server first reads it; jetdir reports the stream after that), and "
        "then the consumers' CONSUMER.INFO taken again after them. A cell is the "
        "stream's comparison: `ok` = every field jetdir reports equals the server's "
        "(`(jetdir err)`: numbers equal but jetdir reported an error-severity problem); "
        "`≠ fields` = disagreement (details below); `as clean` = the same disagreement, "
        "field for field, as in this release's `clean` row (listed there only); `skip` = time-sensitive stream restarted "
        "after its age passed (see `expired`); `-` = stream not in this release; `no start, as "
        "jetdir says` = the server did not start and jetdir said so (`aux_file_stops_server`, "
        "every stream not loaded); `server error` = it did not start, or its answers could not "
        "be taken, and jetdir did not say so (a disagreement). "
        "Compared: " + ", ".join(f[0] for f in STREAM_FIELDS) + ", first_ts, last_ts, "
        "deleted_seqs, subject_counts, live_seqs (STREAM.MSG.GET of every seq when the range "
        f"is ≤ {MAX_GET}, and once more of each not served: the read that cuts a damaged "
        "block answers \"no message found\"), consumers' " + ", ".join(f[0] for f in CONSUMER_FIELDS) + ". "
        "Not reported by jetdir, so not compared: " + "; ".join(NOT_REPORTED) + ".",
        "",
    ]
    lines += summary_table(results, releases)
    lines += [
        "Cell fields: msgs, bytes, first/last (seq), del (num_deleted), dseqs (deleted "
        "sequences), nsubj (num_subjects), subjc (per-subject counts), live (sequences the "
        "server serves by MSG.GET vs jetdir's first..last minus deleted), fts/lts (first/last "
        "timestamp), cons (a consumer's delivered / ack floor / ack pending / redelivered, or "
        "a consumer present on one side only), STREAM (stream present on one side only).",
        "",
    ]
    for v in releases:
        rows = [r for r in results if r["release"] == v]
        if not rows:
            continue
        cols = [s for s in streams if any(s in r.get("streams", {}) for r in rows)]
        lines += [f"## {v}", "", "| failure | " + " | ".join(cols) + " | jetdir exit | server log |",
                  "|---|" + "---|" * (len(cols) + 2)]
        for r in rows:
            if "skipped" in r:
                lines.append(f"| {r['failure']} | skipped: {r['skipped']} |" + " |" * (len(cols) + 1))
                continue
            if r.get("server_error"):
                said = "no start, as jetdir says; " if r.get("start_predicted") else "**server error**: "
                lines.append(f"| {r['failure']} | {said}{fmt_val(r['server_error'])} |"
                             + " |" * (len(cols) + 1))
                continue
            if r.get("jetdir_error"):
                lines.append(f"| {r['failure']} | jetdir error: {fmt_val(r['jetdir_error'])} |"
                             + " |" * (len(cols) + 1))
                continue
            cells = [cell(r["streams"][s]) if s in r["streams"] else "-" for s in cols]
            nlog = len(r.get("server_log", []))
            lines.append(f"| {r['failure']} | " + " | ".join(cells) +
                         f" | {r.get('jetdir_exit')} | {nlog} line(s) |")
        lines.append("")
    lines += ["## Disagreements", ""]
    for r in done:
        bad = {s: c for s, c in r["streams"].items() if c.get("diffs") and not c.get("as_clean")}
        if not bad and not r.get("jetdir_error") and (not r.get("server_error") or r.get("start_predicted")):
            continue
        lines.append(f"### {r['release']} {r['failure']}")
        lines.append("")
        lines.append(f"- damage: {r.get('damage')}")
        if r.get("jetdir_error"):
            lines.append(f"- jetdir error: {fmt_val(r['jetdir_error'])}")
        if r.get("server_error"):
            lines.append(f"- server error: {fmt_val(r['server_error'])}")
        for s, c in bad.items():
            lines.append(f"- **{s}** (jetdir problems: {', '.join(c['jetdir_problems']) or 'none'})")
            for f, a, b in c["diffs"]:
                lines.append(f"  - {f}: jetdir {fmt_val(a)} / server {fmt_val(b)}")
            if c.get("server_get_errors"):
                lines.append(f"  - server MSG.GET errors: {fmt_val(c['server_get_errors'])}")
        log = r.get("server_log", [])
        if log:
            lines.append("- server log on load:")
            for ln in log[:12]:
                lines.append(f"  - `{ln[:300]}`")
            if len(log) > 12:
                lines.append(f"  - … {len(log) - 12} more")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


def disagreement_keys(results: list[dict]) -> dict[str, list[str]]:
    """"release failure stream" -> sorted disagreeing fields (consumer fields
    as "consumer NAME field"), plus "release failure" -> ["jetdir error"] etc."""
    out: dict[str, list[str]] = {}
    for r in results:
        if "skipped" in r:
            continue
        key = f"{r['release']} {r['failure']}"
        if r.get("server_error") and not r.get("start_predicted"):
            out[key] = ["server error"]
        if r.get("jetdir_error"):
            out[key] = ["jetdir error"]
        for s, c in r.get("streams", {}).items():
            if c.get("diffs"):
                out[f"{key} {s}"] = sorted({d[0] for d in c["diffs"]})
            elif cell(c).endswith("(jetdir err)"):
                # numbers agree, but jetdir calls it an error where the server loses nothing
                out[f"{key} {s}"] = ["severity"]
    return out


def check_baseline(results: list[dict], path: Path) -> int:
    """Compare with a committed list of known disagreements: a new one, a
    changed one or one that went away fails (update the file when jetdir
    improves: --write-baseline)."""
    want = json.loads(path.read_text())["disagreements"]
    got = disagreement_keys(results)
    ran = {f"{r['release']} {r['failure']}" for r in results if "skipped" not in r}
    bad = []
    for k in sorted(set(want) | set(got)):
        if " ".join(k.split(" ")[:2]) not in ran or want.get(k) == ["*"]:
            continue  # "*": known to vary from run to run
        if k not in want:
            bad.append(f"NEW disagreement {k}: {got[k]}")
        elif k not in got:
            bad.append(f"GONE (jetdir now agrees?) {k}: was {want[k]}")
        elif want[k] != got[k]:
            bad.append(f"CHANGED {k}: {want[k]} -> {got[k]}")
    for b in bad:
        print("matrix baseline: " + b, file=sys.stderr)
    print(f"matrix baseline: {len(bad)} difference(s) from {path}")
    return 1 if bad else 0


def update_readme(results: list[dict], releases: list[str], when: str) -> bool:
    """Put the summary table between the matrix-summary markers of README.md."""
    readme = REPO / "README.md"
    text = readme.read_text()
    start = text.find("<!-- matrix-summary:start")
    end = text.find("<!-- matrix-summary:end -->")
    if start < 0 or end < 0:
        return False
    start = text.index("\n", start) + 1
    table = summary_table(results, releases)[4:]  # without its heading and note
    body = f"Run {when}.\n\n" + "\n".join(table).rstrip() + "\n"
    readme.write_text(text[:start] + body + text[end:])
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--sample", action="store_true")
    g.add_argument("--full", action="store_true")
    ap.add_argument("--releases")
    ap.add_argument("--failures")
    ap.add_argument("--workloads")
    ap.add_argument("--out", help="case dirs (default matrix-out/sample or matrix-out/full)")
    ap.add_argument("--results")
    # where cargo builds it (CARGO_TARGET_DIR, as scripts/matrix.sh's `cargo build` honours it)
    ap.add_argument("--jetdir", default=str(
        Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target").resolve() / "release" / "jetdir"))
    ap.add_argument("--baseline", help="known disagreements (JSON); exit 1 when the run differs")
    ap.add_argument("--write-baseline", help="write this run's disagreements to this JSON file")
    ap.add_argument("--cipher", choices=["chacha", "aes"],
                    help="encrypted stores (see above); needs --out and --results")
    a = ap.parse_args()
    mode = "full" if a.full else "sample"
    if a.cipher:
        if not (a.out and a.results):
            ap.error("--cipher needs --out and --results")
        global ENC
        FAILURES.update(ENC_FAILURES)
        Path(a.out).mkdir(parents=True, exist_ok=True)
        kf = Path(a.out).resolve() / "key"
        kf.write_text(ENC_KEY)
        ENC = {"cipher": a.cipher, "key_file": kf, "jetdir": a.jetdir}
    releases = a.releases.split(",") if a.releases else (
        nb.RELEASES if mode == "full" else SAMPLE_RELEASES)
    failures = a.failures.split(",") if a.failures else (
        list(FAILURES) if mode == "full" else SAMPLE_FAILURES)
    workloads = a.workloads.split(",") if a.workloads else (
        list(WORKLOADS) if mode == "full" else SAMPLE_WORKLOADS)
    if not a.out:
        a.out = str(REPO / "matrix-out" / mode)
    for f in failures:
        if f not in FAILURES:
            ap.error(f"unknown failure {f}; known: {', '.join(FAILURES)}")
    results_path = Path(a.results) if a.results else (
        REPO / "tests" / "matrix-results.md" if mode == "full" else Path(a.out) / "results-sample.md")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(a.jetdir, os.X_OK):
        print(f"matrix: no jetdir binary at {a.jetdir} (cargo build --release)", file=sys.stderr)
        return 2
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    t_start = time.time()
    results: list[dict] = []
    used = []
    for v in releases:
        binary = nb.find_release(v)
        if binary is None:
            print(f"matrix: release {v} not installed (scripts/install-deps.sh); skipped",
                  file=sys.stderr)
            continue
        used.append(v)
        builds: dict[str, tuple[Path, dict]] = {}
        for f in failures:
            bmode = FAILURES[f][1]
            t0 = time.time()
            try:
                bbin, bver, kind = binary, v, bmode
                if bmode.startswith("from_"):
                    i = nb.RELEASES.index(v) if v in nb.RELEASES else None
                    if bmode == "from_prev":
                        bver = nb.RELEASES[i - 1] if i else None
                    elif bmode == "from_next":
                        bver = nb.RELEASES[i + 1] if i is not None and i + 1 < len(
                            nb.RELEASES) else None
                    else:
                        bver = bmode[5:]
                    bbin = nb.find_release(bver) if bver else None
                    kind = "clean"
                    # a downgrade: the store written by a newer release
                    down = bmode in DOWNGRADES
                    skip = None
                    if bver is None or (vt(bver) <= vt(v) if down else vt(bver) >= vt(v)):
                        skip = "no newer release" if down else "no older release"
                    elif down and v.startswith("2.9."):
                        # 2.9 reads a 2.10+ store's tombstones as messages past 2^62 and cannot
                        # read its compressed blocks: jetdir says so (`format_too_new`, M21)
                        # instead of modelling the numbers that make
                        skip = "2.9 misreads a 2.10+ store (format_too_new)"
                    elif bbin is None:
                        skip = f"{bver} not installed"
                    if skip:
                        r = {"release": v, "failure": f, "skipped": skip}
                        results.append(r)
                        print(f"[{time.time() - t_start:6.0f}s] {v} {f}: {r['skipped']}")
                        continue
                if bmode not in builds or bmode != "clean":
                    bdir = out / v / f"_build_{bmode}"
                    info = build_store(bbin, bver, bdir, kind, workloads)
                    info["built_by"] = bver
                    bad = [x for x in info["log"] if not x["ok"]]
                    for x in bad:
                        print(f"matrix: {v} workload {x['workload']} phase {x['phase']}: "
                              f"{x['error']}", file=sys.stderr)
                    builds[bmode] = (bdir, info)
                bdir, info = builds[bmode]
                r = run_case(binary, v, bdir, info, f, out, a.jetdir)
            except Exception as e:  # noqa: BLE001 - record and go on
                traceback.print_exc()
                r = {"release": v, "failure": f, "streams": {}, "server_error": f"harness: {e!r}"}
            results.append(r)
            if "skipped" in r:
                status = "skipped: " + r["skipped"]
            else:
                status = " ".join(f"{s}={cell(c)}" for s, c in r["streams"].items()
                                  if cell(c) != "ok" and cell(c) != "skip") or "all ok"
            print(f"[{time.time() - t_start:6.0f}s] {v} {f} ({time.time() - t0:.1f}s): {status}",
                  flush=True)
    took = time.time() - t_start
    (out / f"results-{mode}.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    write_results(results, results_path, used, mode, took, rev)
    if mode == "full" and not a.results and not ENC and set(used) == set(nb.RELEASES) \
            and set(failures) == set(FAILURES):
        when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
        if update_readme(results, used, f"{when}, jetdir {rev}, {took / 60:.1f} min"):
            print("matrix: summary table updated in README.md")
    print(f"matrix: {len(results)} cases in {took:.0f}s; table in {results_path}")
    if a.write_baseline:
        Path(a.write_baseline).write_text(json.dumps(
            {"note": "known jetdir/server disagreements, written by tests/support/matrix.py "
                     "--write-baseline; each key is 'release failure stream'",
             "releases": used, "failures": failures,
             "disagreements": disagreement_keys(results)}, indent=1, sort_keys=True) + "\n")
    if a.baseline:
        return check_baseline(results, Path(a.baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
