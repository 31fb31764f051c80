#!/usr/bin/env python3
"""jetdir benchmark: speed and memory against baselines measured in the same run.

    .venv/bin/python bench/run.py [--size-gib 1] [--work DIR] [--keep]

What it does (see bench/README.md for details):
  1. `cargo build --profile profiling` (release with debug info; unless --jetdir BIN is given);
  2. makes the test data with the real nats-server 2.15.1 on 127.0.0.1: a plain stream BENCH of
     --size-gib of block bytes, a plain stream SMALL of a quarter of that, an S2-compressed stream
     BENCHS2 (a quarter, uncompressed) and a tiny stream TINY used for trial runs;
  3. times, each in a fresh child process under GNU time (for its peak RSS and CPU):
     raw read (`cat msgs/*.blk`), `jetdir verify` (deep and --quick), the real server's start-up
     with index.db removed (it rebuilds the state by reading every block), `jetdir dump` (text
     and --json) to /dev/null and `jetdir diff` of two copies of the stream;
  4. the snapshot API (= `nats stream backup`), `jetdir verify` of that backup, and - only when the
     built binary implements them - `jetdir extract` against the server's restore API and
     `jetdir pack --format v1` against the snapshot API;
  5. prints a markdown table and writes it to bench/results-<date>.md.

Every measurement is preceded by one untimed warm-up run of the same command (so the page cache
holds the input) and is then repeated --repeats times; the best (lowest) wall time is reported,
and the highest peak RSS of those runs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))
import natsbox  # noqa: E402

MIB = 1024 * 1024
GIB = 1024 * MIB
ACCOUNT = "$G"
RSS_LIMIT_MIB = 64.0


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# measuring child processes
# --------------------------------------------------------------------------


@dataclass
class Run:
    wall: float  # seconds, from fork to exit
    maxrss_kib: int  # ru_maxrss of the child (Linux: KiB)
    cpu: float  # user + system seconds
    rc: int
    stderr: str = ""
    stdout: str = ""
    other: Optional[float] = None  # share of the machine's CPU used by other processes meanwhile


def busy_seconds() -> float:
    """CPU seconds spent not idle, summed over all CPUs, since boot (/proc/stat)."""
    f = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    v = [int(x) for x in f[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Measure:
    name: str
    runs: list[Run] = field(default_factory=list)
    nbytes: int = 0  # bytes the throughput is computed from
    note: str = ""

    @property
    def wall(self) -> float:
        return min(r.wall for r in self.runs)

    @property
    def walls(self) -> tuple[float, float, float]:
        """(min, median, max) wall seconds of the timed runs."""
        w = sorted(r.wall for r in self.runs)
        n = len(w)
        med = w[n // 2] if n % 2 else (w[n // 2 - 1] + w[n // 2]) / 2
        return w[0], med, w[-1]

    @property
    def rss_mib(self) -> float:
        return max(r.maxrss_kib for r in self.runs) / 1024.0

    @property
    def best(self) -> Run:
        return min(self.runs, key=lambda r: r.wall)

    @property
    def cpu(self) -> float:
        return self.best.cpu

    @property
    def mbps(self) -> float:
        return self.nbytes / self.wall / 1e6 if self.wall > 0 else 0.0


TIME = "/usr/bin/time"


QUIET = {"max_wait": 30.0, "threshold": 0.15, "waited": 0.0}


def wait_quiet() -> None:
    """Before a timed run: wait (up to QUIET['max_wait'] s) until the machine has been less
    than QUIET['threshold'] busy for half a second, so other helpers' builds skew less."""
    if QUIET["max_wait"] <= 0:
        return
    deadline = time.monotonic() + QUIET["max_wait"]
    ncpu = os.cpu_count() or 1
    t = time.monotonic()
    while True:
        b0 = busy_seconds()
        time.sleep(0.5)
        if (busy_seconds() - b0) / (0.5 * ncpu) < QUIET["threshold"] or time.monotonic() > deadline:
            break
    QUIET["waited"] += time.monotonic() - t - 0.5


def read_time_file(path: Path) -> tuple[int, float]:
    """(peak RSS KiB, user+sys s) from GNU time's `-f "%M %U %S"` output file."""
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    kib, user, sys_ = lines[-1].split()
    return int(kib), float(user) + float(sys_)


def timed_argv(argv: list[str], out: Path) -> list[str]:
    """argv run under GNU time: a small C parent, so the child's ru_maxrss is its own
    (a child forked from this Python process would inherit Python's high-water mark)."""
    return [TIME, "-f", "%M %U %S", "-o", str(out), *argv]


def run_child(argv: list[str], *, capture_stdout: bool = False) -> Run:
    """Run argv in a fresh process; wall time from here, peak RSS and CPU from GNU time."""
    with tempfile.TemporaryDirectory() as td:
        tf = Path(td) / "time"
        with open(Path(td) / "err", "w+b") as err, open(Path(td) / "out", "w+b") as out:
            b0 = busy_seconds()
            t0 = time.perf_counter()
            p = subprocess.run(
                timed_argv(argv, tf),
                stdin=subprocess.DEVNULL,
                stdout=out if capture_stdout else subprocess.DEVNULL,
                stderr=err,
            )
            wall = time.perf_counter() - t0
            busy = busy_seconds() - b0
            err.seek(0)
            out.seek(0)
            kib, cpu = read_time_file(tf)
            ncpu = os.cpu_count() or 1
            return Run(
                other=max(0.0, busy - cpu) / (wall * ncpu) if wall > 0 else None,
                wall=wall,
                maxrss_kib=kib,
                cpu=cpu,
                rc=p.returncode,
                stderr=err.read().decode(errors="replace"),
                stdout=out.read().decode(errors="replace") if capture_stdout else "",
            )


def measure(
    name: str,
    argv: list[str],
    nbytes: int,
    repeats: int,
    *,
    prepare: Optional[Callable[[int], list[str]]] = None,
    cleanup: Optional[Callable[[int], None]] = None,
    ok_rcs: tuple[int, ...] = (0,),
) -> Measure:
    """One warm-up run, then `repeats` timed runs. `prepare(i)` may return a fresh argv
    per run (e.g. a new output dir); `cleanup(i)` runs after each."""
    m = Measure(name, nbytes=nbytes)
    for i in range(repeats + 1):
        args = prepare(i) if prepare else argv
        if i > 0:
            wait_quiet()
        r = run_child(args)
        if cleanup:
            cleanup(i)
        if r.rc not in ok_rcs:
            raise RuntimeError(f"{name}: {' '.join(args)} exited {r.rc}:\n{r.stderr[-2000:]}")
        if i > 0:  # run 0 is the warm-up
            m.runs.append(r)
    log(f"{name}: best {m.wall:.3f}s, {m.mbps:.0f} MB/s, peak RSS {m.rss_mib:.1f} MiB, cpu {m.cpu:.2f}s")
    return m


def measure_beside(
    name: str,
    argv: list[str],
    nbytes: int,
    base_name: str,
    base_argv: list[str],
    base_nbytes: int,
    repeats: int,
) -> tuple[Measure, Measure]:
    """`argv` and its baseline `base_argv` timed in turn: one warm-up run of each, then
    `repeats` rounds of one run of each. A target's ratio compares two commands; this VM's
    speed drifts by up to a fifth within minutes, and runs of the two taken minutes apart
    moved the ratio across its target from one benchmark run to the next (V2 backup verify
    vs verify: 1.73x, 1.88x, 2.33x the time in three runs of one day)."""
    m = Measure(name, nbytes=nbytes)
    b = Measure(base_name, nbytes=base_nbytes)
    for i in range(repeats + 1):
        for meas, args in ((m, argv), (b, base_argv)):
            if i > 0:
                wait_quiet()
            r = run_child(args)
            if r.rc != 0:
                raise RuntimeError(f"{meas.name}: {' '.join(args)} exited {r.rc}:\n{r.stderr[-2000:]}")
            if i > 0:  # round 0 is the warm-up
                meas.runs.append(r)
    for meas in (m, b):
        log(f"{meas.name}: best {meas.wall:.3f}s, {meas.mbps:.0f} MB/s, peak RSS {meas.rss_mib:.1f} MiB, "
            f"cpu {meas.cpu:.2f}s")
    return m, b


# --------------------------------------------------------------------------
# making the data
# --------------------------------------------------------------------------

PAYLOAD = 1000  # bytes: ~half random, ~half text (so S2 has something to do)
SUBJECTS = 16
WINDOW = 20000  # unacked publishes in flight
ACK_EVERY = 100  # only every 100th publish asks for a PubAck (they come back in order)


def make_pools() -> tuple[bytes, bytes]:
    rnd = os.urandom(16 * MIB)
    words = [
        b"order", b"customer", b"shipped", b"paid", b"pending", b"warehouse", b"sku",
        b"quantity", b"price", b"currency", b"EUR", b"USD", b"region", b"eu-west",
        b"us-east", b"priority", b"normal", b"express", b"status", b"created", b"updated",
    ]
    import random

    rng = random.Random(42)
    parts = []
    size = 0
    while size < 4 * MIB:
        w = b'{"%s":"%s-%d","%s":%d},' % (
            rng.choice(words), rng.choice(words), rng.randrange(100000),
            rng.choice(words), rng.randrange(1000),
        )
        parts.append(w)
        size += len(w)
    return rnd, b"".join(parts)


def record_size(subject: str, hdr_len: int, payload: int) -> int:
    # 22-byte header + subject + (u32 header length + headers) + payload + 8-byte hash
    return 22 + len(subject) + (4 + hdr_len if hdr_len else 0) + payload + 8


async def fill_stream(nc, prefix: str, target_bytes: int, pools: tuple[bytes, bytes]) -> int:
    """Publish ~target_bytes of records to `<prefix>.sNN.evt`; returns the message count.
    The stream must be empty and have this connection as its only publisher, so the
    stream sequence of publish i is i; PubAcks are requested for every ACK_EVERY-th."""
    rnd, txt = pools
    half = PAYLOAD // 2
    inbox = f"_BENCH_ACK.{prefix.replace('.', '_')}"
    state = {"acked": 0, "errors": []}
    ev = asyncio.Event()

    async def on_ack(msg):
        body = json.loads(msg.data)
        if body.get("error"):
            state["errors"].append(body["error"])
        else:
            state["acked"] = max(state["acked"], body["seq"])
        ev.set()

    sub = await nc.subscribe(inbox, cb=on_ack)
    sent = 0
    est = 0
    t0 = time.perf_counter()
    hdr_len = len(b"NATS/1.0\r\nX-Bench-Seq: 0000000\r\nContent-Type: application/octet-stream\r\n\r\n")
    while est < target_bytes:
        i = sent + 1
        subj = f"{prefix}.s{i % SUBJECTS:02d}.evt"
        ro = (i * 7919) % (len(rnd) - half)
        to = (i * 104729) % (len(txt) - half)
        payload = rnd[ro : ro + half] + txt[to : to + half]
        hdrs = {"X-Bench-Seq": f"{i:07d}", "Content-Type": "application/octet-stream"}
        last = est + record_size(subj, hdr_len, PAYLOAD) >= target_bytes
        reply = inbox if (i % ACK_EVERY == 0 or last) else ""
        await nc.publish(subj, payload, reply=reply, headers=hdrs)
        est += record_size(subj, hdr_len, PAYLOAD)
        sent = i
        while sent - state["acked"] > WINDOW:
            ev.clear()
            try:
                await asyncio.wait_for(ev.wait(), 30)
            except asyncio.TimeoutError:
                raise RuntimeError(f"no PubAck for 30 s (acked {state['acked']} of {sent})")
            if state["errors"]:
                raise RuntimeError(f"publish error: {state['errors'][0]}")
    deadline = time.monotonic() + 120
    while state["acked"] < sent:
        if state["errors"]:
            raise RuntimeError(f"publish error: {state['errors'][0]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"last PubAck missing (acked {state['acked']} of {sent})")
        ev.clear()
        try:
            await asyncio.wait_for(ev.wait(), 5)
        except asyncio.TimeoutError:
            pass
    await sub.unsubscribe()
    dt = time.perf_counter() - t0
    log(f"  {prefix}: {sent} messages, ~{est / MIB:.0f} MiB in {dt:.1f}s ({sent / dt:.0f} msg/s)")
    return sent


async def make_data(server: str, store: Path, work: Path, plan: list, tiny_backup: bool,
                    jetstream_extra: Optional[dict] = None) -> dict:
    """Create the streams of `plan` [(name, subject prefix, block bytes, compression)] on a
    real server, stop it; returns what the server said about each. `jetstream_extra`: more
    `jetstream { }` settings (a `key` and `cipher`: an encrypted store)."""
    srv = natsbox.NatsServer(server, store, jetstream_extra=jetstream_extra,
                             work_dir=work / f"gen-server-{store.name}")
    srv.start()
    facts: dict = {}
    try:
        nc = await natsbox.connect(srv.url)
        await natsbox.wait_jetstream(nc)
        pools = make_pools()
        for name, prefix, nbytes, comp in plan:
            cfg = {"name": name, "subjects": [f"{prefix}.>"]}
            if comp != "none":  # 2.9 knows no `compression`
                cfg["compression"] = comp
            await natsbox.create_stream(nc, cfg)
            n = await fill_stream(nc, prefix, nbytes, pools)
            # a few deletes: half secure-erased (the API default), half tombstone-only
            if n >= 20:
                for k, seq in enumerate(range(n // 11, n, max(1, n // 11))[:10]):
                    await natsbox.delete_msg(nc, name, seq, erase=(k % 2 == 0))
            # one durable pull consumer with explicit acks: 1000 acked, 200 pending
            await natsbox.create_consumer(
                nc, name, {"durable_name": "C1", "ack_policy": "explicit", "ack_wait": 600_000_000_000}
            )
            got = await natsbox.fetch(nc, name, "C1", min(1000, n // 2), timeout=5)
            for m in got:
                await natsbox.ack(nc, m)
            await natsbox.fetch(nc, name, "C1", min(200, n // 4), timeout=5)
            info = await natsbox.stream_info(nc, name)
            st = info["state"]
            facts[name] = {
                "messages": st["messages"],
                "bytes": st["bytes"],
                "first_seq": st["first_seq"],
                "last_seq": st["last_seq"],
                "num_deleted": st.get("num_deleted", 0),
                "compression": comp,
            }
        if tiny_backup:  # a V2 backup of TINY for the trial run of `jetdir extract`
            await natsbox.snapshot_stream(nc, "TINY", work / "tiny-backup")
        await nc.close()
    finally:
        srv.stop(timeout=120)
    return facts


# --------------------------------------------------------------------------
# the real server as the baseline
# --------------------------------------------------------------------------


def wait_listening(port: int, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nats-server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.002)
    raise RuntimeError("nats-server did not listen")


async def _quiet_err(_e):
    pass


async def poll_stream_count(url: str, name: str, expected: int, deadline: float) -> float:
    """perf_counter() when STREAM.INFO first answers with `expected` messages."""
    import nats

    nc = await nats.connect(
        url, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False,
        error_cb=_quiet_err,
    )
    try:
        last = None
        while time.monotonic() < deadline:
            try:
                r = await nc.request(f"$JS.API.STREAM.INFO.{name}", b"", timeout=1)
                body = json.loads(r.data)
                last = body
                if body.get("state", {}).get("messages") == expected:
                    return time.perf_counter()
            except Exception as e:  # no responders / timeout while JetStream recovers
                last = repr(e)
            await asyncio.sleep(0.002)
        raise RuntimeError(f"{name} never reached {expected} messages: {str(last)[:300]}")
    finally:
        await nc.close()


def child_pid(parent: int, deadline: float) -> int:
    """The PID of `parent`'s (only) child: GNU time's server process."""
    while time.monotonic() < deadline:
        try:
            kids = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            kids = []
            for st in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = st.read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == parent:
                    kids.append(st.parent.name)
        if kids:
            return int(kids[0])
        time.sleep(0.001)
    raise RuntimeError(f"no child of {parent}")


def server_startup(server: str, store: Path, name: str, expected: int, log_path: Path,
                   conf: Optional[Path] = None) -> Run:
    """Start nats-server (under GNU time) on `store`, time until STREAM.INFO shows all
    messages, then SIGTERM the server's own PID and wait. CPU includes the clean shutdown.
    `conf`: a config file for the rest (an encrypted store's `jetstream { key }`)."""
    port = natsbox.free_port()
    tf = log_path.with_suffix(".time")
    with_conf = ["-c", str(conf)] if conf else []
    with open(log_path, "ab") as logf:
        t0 = time.perf_counter()
        p = subprocess.Popen(
            timed_argv([server, *with_conf, "-js", "-sd", str(store), "-a", "127.0.0.1", "-p", str(port)], tf),
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
        )
    spid = 0
    try:
        deadline = time.monotonic() + 1800
        spid = child_pid(p.pid, deadline)
        wait_listening(port, p, deadline)
        t1 = asyncio.run(poll_stream_count(f"nats://127.0.0.1:{port}", name, expected, deadline))
    finally:
        if p.poll() is None:
            if spid:
                os.kill(spid, signal.SIGTERM)
            else:  # the server never started: GNU time itself is all there is
                os.kill(p.pid, signal.SIGTERM)
        p.wait(timeout=600)
    kib, cpu = read_time_file(tf)
    tf.unlink()
    return Run(wall=t1 - t0, maxrss_kib=kib, cpu=cpu, rc=0)


def copy_stream(src_stream: Path, dst_store: Path) -> Path:
    dst = dst_store / "jetstream" / ACCOUNT / "streams" / src_stream.name
    dst.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(src_stream), str(dst)], check=True)
    return dst


def measure_rebuild(server: str, src_stream: Path, expected: int, nbytes: int, work: Path, repeats: int,
                    conf: Optional[Path] = None) -> Measure:
    m = Measure(f"nats-server start-up, index.db removed ({src_stream.name})", nbytes=nbytes)
    for i in range(repeats + 1):
        store = work / f"rebuild-{src_stream.name}-{i}"
        dst = copy_stream(src_stream, store)
        (dst / "msgs" / "index.db").unlink(missing_ok=True)
        subprocess.run(["sync"], check=True)
        if i > 0:
            wait_quiet()
        r = server_startup(server, store, src_stream.name, expected, work / "rebuild-server.log", conf)
        shutil.rmtree(store)
        if i > 0:
            m.runs.append(r)
    log(f"{m.name}: best {m.wall:.3f}s, {m.mbps:.0f} MB/s, peak RSS {m.rss_mib:.1f} MiB, cpu {m.cpu:.2f}s")
    return m


def measure_snapshot(server: str, store: Path, name: str, work: Path, nbytes: int, repeats: int) -> tuple[Measure, Path]:
    """Time the snapshot API (what `nats stream backup` does) on a running server;
    keeps the last backup dir."""
    m = Measure(f"snapshot API = `nats stream backup` ({name})", nbytes=nbytes)
    srv = natsbox.NatsServer(server, store, work_dir=work / "snap-server")
    srv.start(timeout=600)
    keep = work / f"backup-{name}"
    try:
        async def one(out: Path) -> float:
            nc = await natsbox.connect(srv.url)
            try:
                await natsbox.wait_jetstream(nc, timeout=600)
                t0 = time.perf_counter()
                await natsbox.snapshot_stream(nc, name, out, idle_timeout=120)
                return time.perf_counter() - t0
            finally:
                await nc.close()

        for i in range(repeats + 1):
            out = work / f"snap-{name}-{i}"
            if i > 0:
                wait_quiet()
            wall = asyncio.run(one(out))
            if i > 0:
                m.runs.append(Run(wall=wall, maxrss_kib=0, cpu=0.0, rc=0))
            if i < repeats:
                shutil.rmtree(out)
            else:
                out.rename(keep)
    finally:
        srv.stop(timeout=300)
    log(f"{m.name}: best {m.wall:.3f}s, {m.mbps:.0f} MB/s")
    return m, keep


def measure_restore(server: str, backup: Path, name: str, expected: int, work: Path, nbytes: int, repeats: int) -> Measure:
    """Time the restore API (what `nats stream restore` does) into a fresh server."""
    m = Measure(f"restore API = `nats stream restore` ({name})", nbytes=nbytes)
    for i in range(repeats + 1):
        store = work / f"restore-store-{i}"
        srv = natsbox.NatsServer(server, store, work_dir=work / f"restore-server-{i}")
        srv.start()

        async def one() -> float:
            nc = await natsbox.connect(srv.url)
            try:
                await natsbox.wait_jetstream(nc)
                t0 = time.perf_counter()
                await natsbox.restore_stream(nc, backup, timeout=1800)
                wall = time.perf_counter() - t0
                st = (await natsbox.stream_info(nc, name))["state"]
                if st["messages"] != expected:
                    raise RuntimeError(f"restore gave {st['messages']} messages, want {expected}")
                return wall
            finally:
                await nc.close()

        if i > 0:
            wait_quiet()
        try:
            wall = asyncio.run(one())
        finally:
            srv.stop(timeout=300)
            shutil.rmtree(store, ignore_errors=True)
            shutil.rmtree(work / f"restore-server-{i}", ignore_errors=True)
        if i > 0:
            m.runs.append(Run(wall=wall, maxrss_kib=0, cpu=0.0, rc=0))
    log(f"{m.name}: best {m.wall:.3f}s, {m.mbps:.0f} MB/s")
    return m


def server_accepts(server: str, store: Path, name: str, expected: int, work: Path) -> str:
    """Start a server on `store` and check the stream's message count; '' when fine."""
    try:
        r = server_startup(server, store, name, expected, work / "check-server.log")
        return "" if r.rc == 0 else "server failed"
    except Exception as e:  # noqa: BLE001
        return str(e)[:300]


def restore_accepts(server: str, backup: Path, name: str, expected: int, work: Path) -> str:
    store = work / "accept-store"
    srv = natsbox.NatsServer(server, store, work_dir=work / "accept-server")
    srv.start()

    async def one() -> str:
        nc = await natsbox.connect(srv.url)
        try:
            await natsbox.wait_jetstream(nc)
            await natsbox.restore_stream(nc, backup, timeout=1800)
            st = (await natsbox.stream_info(nc, name))["state"]
            return "" if st["messages"] == expected else f"{st['messages']} messages, want {expected}"
        finally:
            await nc.close()

    try:
        return asyncio.run(one())
    except Exception as e:  # noqa: BLE001
        return str(e)[:300]
    finally:
        srv.stop(timeout=300)
        shutil.rmtree(store, ignore_errors=True)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def blk_files(stream_dir: Path) -> list[Path]:
    def key(p: Path) -> int:
        try:
            return int(p.stem)
        except ValueError:
            return 0

    return sorted((stream_dir / "msgs").glob("*.blk"), key=key)


def dir_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file())


def uncompressed_bytes(stream_dir: Path) -> tuple[int, int]:
    """(uncompressed size of all blocks, number of compressed blocks): the `cmp` header's
    uvarint original size for compressed blocks, the file size otherwise."""
    total = 0
    ncmp = 0
    for p in blk_files(stream_dir):
        with open(p, "rb") as f:
            head = f.read(16)
        if len(head) >= 5 and head[:3] == b"cmp":
            size, shift = 0, 0
            for b in head[4:]:
                size |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            total += size
            ncmp += 1
        else:
            total += p.stat().st_size
    return total, ncmp


def jetdir_json(jetdir: str, path: Path) -> dict:
    r = run_child([jetdir, "--json", "--quiet", "verify", str(path)], capture_stdout=True)
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError:
        return {"ok": False, "error": f"rc {r.rc}: {r.stderr[-500:]}"}


def trial(jetdir: str, argv: list[str]) -> tuple[str, str]:
    """('ok'|'missing'|'broken', detail) for a subcommand: --help, then a trial run."""
    h = run_child([jetdir, argv[0], "--help"])
    if h.rc != 0:
        return "missing", f"`jetdir {argv[0]} --help` exited {h.rc}"
    r = run_child([jetdir, *argv])
    if r.rc == 0:
        return "ok", ""
    text = r.stderr.strip().splitlines()
    last = text[-1] if text else f"exit {r.rc}"
    if "not implemented" in r.stderr:
        return "missing", f"the built binary says: {last}"
    return "broken", f"trial run exited {r.rc}: {last}"


def machine_notes(jetdir: str, server: str) -> list[str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    flags = ""
    try:
        txt = Path("/proc/cpuinfo").read_text()
        flags = ", ".join(f for f in ("avx2", "avx512f", "sse4_2") if f" {f}" in txt)
    except OSError:
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "src"],
        capture_output=True, text=True,
    ).stdout.strip()
    return [
        f"CPU: {cpu} x {os.cpu_count()} ({flags}); RAM {mem}; kernel {platform.release()}",
        f"{rustc}; jetdir at `{commit}`{' (src/ has uncommitted changes)' if dirty else ''}",
        f"nats-server {natsbox.server_version(server)} ({server}); nats-py client; Python {platform.python_version()}",
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]


def resident_share(files: list[Path]) -> Optional[float]:
    """The share of `files`' bytes in the page cache (util-linux `fincore`), or None when it
    cannot be told. Every timed run assumes a warm page cache; this VM has been seen to drop
    cached pages with most of its memory free, so the report says how warm it was."""
    if not files or shutil.which("fincore") is None:
        return None
    r = subprocess.run(["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES,SIZE",
                        *map(str, files)], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    res = size = 0
    for line in r.stdout.split("\n"):
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            res += int(parts[0])
            size += int(parts[1])
    return res / size if size else None


def flipped_byte_found(jetdir: str, stream: Path, work: Path) -> str:
    """Copies `stream`, flips one byte in the middle of its middle block (inside a record, so
    only the record checksum can tell) and runs the timed kind of verify (deep, human output)
    on it: 'found ...' when it exits 1 naming a checksum finding."""
    dst = work / "flipped" / stream.name
    shutil.rmtree(dst.parent, ignore_errors=True)
    dst.parent.mkdir(parents=True)
    subprocess.run(["cp", "-a", str(stream), str(dst)], check=True)
    try:
        files = blk_files(dst)
        f = files[len(files) // 2]
        data = bytearray(f.read_bytes())
        at = len(data) // 2
        data[at] ^= 0x01
        f.write_bytes(bytes(data))
        r = run_child([jetdir, "--no-progress", "verify", str(dst)], capture_stdout=True)
        j = run_child([jetdir, "--json", "--quiet", "verify", str(dst)], capture_stdout=True)
        try:
            kinds = sorted({p.get("kind", "?") for p in json.loads(j.stdout).get("problems", [])})
        except json.JSONDecodeError:
            kinds = []
        if r.rc == 1 and any("checksum" in k for k in kinds):
            return f"found (exit 1; {', '.join(kinds)}; byte {at} of {f.name})"
        return f"NOT found (exit {r.rc}; kinds {kinds}; byte {at} of {f.name})"
    finally:
        shutil.rmtree(dst.parent, ignore_errors=True)


def snap_rows(s2snap: str, files: list[Path], server_s2: Path, repeats: int, figures: list, checks: list) -> list[Row]:
    """bench/s2snap.rs on the block files (at most 256 MiB, so memory stays modest): jetdir's
    S2 framed encoder/decoder against the snap crate's Snappy frames, one core, interleaved."""
    wait_quiet()
    r = subprocess.run(
        [s2snap, "--repeats", str(repeats), "--max-mib", "256", "--s2-stream", str(server_s2), *map(str, files)],
        capture_output=True, text=True,
    )
    if r.returncode != 0:
        raise RuntimeError(f"s2snap exited {r.returncode}: {r.stderr[-2000:]}")
    j = json.loads(r.stdout)
    n = j["bytes"]

    def m(name: str, key: str, nbytes: int) -> Measure:
        return Measure(name, runs=[Run(wall=w, maxrss_kib=0, cpu=w, rc=0) for w in j[key]], nbytes=nbytes)

    s2e = m("jetdir S2 encode, one core (BENCH blocks, uncompressed MB/s)", "s2_encode", n)
    sne = m("snap Snappy-frame encode, one core (same data)", "snap_encode", n)
    s2d = m("jetdir S2 decode, one core (its own encoding of the BENCH blocks)", "s2_decode", n)
    snd = m("snap Snappy-frame decode, one core (its own encoding of the same data)", "snap_decode", n)
    figures += [s2e, sne, s2d, snd]
    rows = [
        ratio_row("S2 decoding vs `snap` decoding Snappy frames of the same data, one core", s2d, snd, "faster", 1.3, 0.5),
        ratio_row("S2 encoding vs `snap`: speed", s2e, sne, "faster", 1.0, 0.3),
    ]
    size = j["s2_size"] / j["snap_size"]
    lim = 1.1 if SMOKE["on"] else 0.5
    rows.append(Row(
        "S2 encoding vs `snap`: compressed size", f"{j['s2_size'] / MIB:.1f} MiB", f"{j['snap_size'] / MIB:.1f} MiB",
        f"{size:.2f}x the size", f"<= {lim:g}x", verdict(size <= lim),
    ))
    checks.append(
        f"S2 vs snap input: the first {n / MIB:.0f} MiB of BENCH's block files; jetdir S2 {j['s2_size'] / MIB:.1f} MiB "
        f"(1 MiB chunks), snap {j['snap_size'] / MIB:.1f} MiB (64 KiB chunks); both decoded back to the input"
    )
    if j["other_bytes"]:
        so = m("jetdir S2 decode, one core (the server's stream.tar.s2, uncompressed MB/s)", "other_decode", j["other_bytes"])
        figures.append(so)
        rows.append(Row(
            "S2 decoding of the server's `stream.tar.s2` (klauspost S2), one core", fmt_mbps(so), "", "", "(info)", "",
        ))
    return rows


def floor_rows(floors: str, files: list[Path], server_s2: Path, repeats: int, m_cat: Measure, m_ver: Measure,
               m_vb: Measure, figures: list, checks: list) -> list[Row]:
    """bench/floors.rs on BENCH's block files and the server's stream.tar.s2: what deep verify
    and the V2 backup's verify cannot go below on this machine (the read with verify's access
    pattern, HighwayHash of every record, the parallel S2 decode alone), in the same run."""
    wait_quiet()
    r = subprocess.run([floors, "--repeats", str(repeats), "--s2-stream", str(server_s2), *map(str, files)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"floors exited {r.returncode}: {r.stderr[-2000:]}")
    j = json.loads(r.stdout)
    n, t = j["bytes"], j["threads"]

    def m(name: str, key: str, nbytes: int, threads: int) -> Measure:
        # timed in-process: on one thread CPU = wall; on more, CPU is not measured
        return Measure(name, runs=[Run(wall=w, maxrss_kib=0, cpu=w if threads == 1 else 0.0, rc=0) for w in j[key]],
                       nbytes=nbytes, note="in-process")

    f_read = m(f"floor: read of BENCH's blocks with verify's access pattern, {t} threads", "read", n, t)
    f_rh = m(f"floor: that read + HighwayHash-64 of every record, nothing else, {t} threads", "read_hash", n, t)
    f_hash = m("floor: HighwayHash-64 of every record alone, one core (blocks in memory)", "hash",
               j["hash_bytes"], 1)
    f_s2 = m(f"floor: the server's stream.tar.s2 S2-decoded alone, {t} threads (uncompressed MB/s)", "s2_par",
             j["s2_bytes"], t)
    for r, c in zip(f_s2.runs, j.get("s2_par_cpu", [])):
        r.cpu = c
    for r, c in zip(f_rh.runs, j.get("read_hash_cpu", [])):
        r.cpu = c
    figures += [f_read, f_rh, f_hash, f_s2]
    checks.append(
        f"floors (bench/floors.rs): {j['records']} records of BENCH hashed, {j['bad']} checksums wrong; "
        f"the V2 floor decodes {j['s2_bytes'] / MIB:.1f} MiB"
    )
    return [
        ratio_row("floor of deep verify (read + hash of every record, nothing else) vs `cat`",
                  f_rh, m_cat, "share", None, None),
        ratio_row("deep verify vs its floor (read + hash)", m_ver, f_rh, "share", None, None),
        Row("deep verify CPU vs its floor's CPU (best runs)", f"{m_ver.cpu:.2f} CPU-s", f"{f_rh.cpu:.2f} CPU-s",
            f"{m_ver.cpu / f_rh.cpu:.2f}x" if f_rh.cpu > 0 else "", "(info)", ""),
        ratio_row("floor of a V2 backup's verify (its S2 decode alone, all cores) vs verify on disk",
                  f_s2, m_ver, "time", None, None),
        ratio_row("verify of a V2 backup vs its floor (the S2 decode alone)", m_vb, f_s2, "time", None, None),
        Row("V2 backup verify CPU vs its floor's CPU (best runs)", f"{m_vb.cpu:.2f} CPU-s", f"{f_s2.cpu:.2f} CPU-s",
            f"{m_vb.cpu / f_s2.cpu:.2f}x" if f_s2.cpu > 0 else "", "(info)", ""),
    ]


def v1_floor_rows(floors: str, s2file: Path, stream: str, repeats: int, m_v29: Measure, m_vb1: Measure,
                  figures: list, checks: list) -> list[Row]:
    """bench/floors.rs --v1 on a V1 backup's stream.tar.s2: decoded on all cores by the parallel
    reader verify uses, its tar walked, every record of its blocks framed and hashed on all
    cores, nothing else: what verify of that backup cannot go below."""
    wait_quiet()
    r = subprocess.run([floors, "--repeats", str(repeats), "--v1", str(s2file), "--stream", stream],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"floors --v1 exited {r.returncode}: {r.stderr[-2000:]}")
    j = json.loads(r.stdout)
    t, nb = j["threads"], m_v29.nbytes
    f_v1 = Measure(f"floor: V1 backup of {stream} S2-decoded + tar walked + HighwayHash-64 of every record, "
                   f"{t} threads (MB/s of the stream's blocks)",
                   runs=[Run(wall=w, maxrss_kib=0, cpu=c, rc=0) for w, c in zip(j["v1"], j["v1_cpu"])],
                   nbytes=nb, note="in-process")
    f_s2 = Measure(f"floor: V1 backup of {stream} S2-decoded alone, {t} threads (MB/s of the stream's blocks)",
                   runs=[Run(wall=w, maxrss_kib=0, cpu=0.0, rc=0) for w in j["v1_s2"]], nbytes=nb,
                   note="in-process")
    figures += [f_v1, f_s2]
    checks.append(f"V1 floor (bench/floors.rs --v1): {j['v1_bytes'] / MIB:.1f} MiB of tar decoded, "
                  f"{j['v1_blocks'] / MIB:.1f} MiB of blocks, {j['records']} records hashed, {j['bad']} checksums wrong")
    return [
        ratio_row("floor of V1 backup verify (S2 decode + hash of every record, all cores) vs on-disk verify",
                  f_v1, m_v29, "time", None, None),
        ratio_row("V1 backup verify vs its floor (S2 decode + hash)", m_vb1, f_v1, "time", None, None),
        Row("V1 backup verify CPU vs its floor's CPU (best runs)", f"{m_vb1.cpu:.2f} CPU-s", f"{f_v1.cpu:.2f} CPU-s",
            f"{m_vb1.cpu / f_v1.cpu:.2f}x" if f_v1.cpu > 0 else "", "(info)", ""),
    ]


# --------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------


@dataclass
class Row:
    what: str
    ours: str
    base: str
    ratio: str
    target: str
    result: str


# --------------------------------------------------------------------------
# encrypted streams (issue #13): BENCH's size written with a JetStream key
# --------------------------------------------------------------------------

ENC_KEY = "jetdir-bench-key-0123456789abcdef"


def enc_floor(floors: str, files: list[Path], key: Path, cipher: str, repeats: int, figures: list,
              checks: list) -> Measure:
    """bench/floors.rs --key-file on an encrypted stream's block files: each block's key file
    opened, the block read, decrypted whole by the keystream code verify uses, every record
    framed and hashed, nothing else, all cores: what the encrypted deep verify cannot go below."""
    wait_quiet()
    r = subprocess.run([floors, "--repeats", str(repeats), "--key-file", str(key), *map(str, files)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"floors --key-file exited {r.returncode}: {r.stderr[-2000:]}")
    j = json.loads(r.stdout)
    t = j["threads"]

    def m(name: str, key: str) -> Measure:
        cpu = j.get(key + "_cpu") or [0.0] * len(j[key])
        return Measure(name, runs=[Run(wall=w, maxrss_kib=0, cpu=c, rc=0) for w, c in zip(j[key], cpu)],
                       nbytes=j["bytes"], note="in-process")

    f_read = m(f"floor: read of ENC{cipher.upper()}'s encrypted blocks with verify's access pattern, {t} threads",
               "read")
    f_xor = m(f"floor: that read + key file + keystream (decrypted in place), {t} threads", "enc_xor")
    f_enc = m(f"floor: that read + keystream + HighwayHash-64 of every record, nothing else, {t} threads "
              f"(ENC{cipher.upper()})", "enc")
    figures += [f_read, f_xor, f_enc]
    checks.append(f"encrypted floor ({cipher}, bench/floors.rs --key-file): {j['records']} records decrypted "
                  f"and hashed, {j['bad']} checksums wrong")
    return f_enc


def enc_rows(server: str, jetdir: str, work: Path, size: int, repeats: int, m_ver: Measure,
             plain_verify: list[str], figures: list, checks: list, floors: str = "",
             keep: bool = False) -> list[Row]:
    """For each cipher: a stream of `size` block bytes written by the server with a key
    (`jetstream { key, cipher }`); deep verify with --key-file timed in turn with the plain
    stream's (`plain_verify`; `m_ver` for the floor's row), the server's rebuild of the encrypted stream (index.db removed,
    started with the key), verify of a `.tar` of the encrypted stream dir (memory), and (with
    `floors`) the encrypted verify's floor (read + keystream + hash, all cores)."""
    rows: list[Row] = []
    key = work / "enc.key"
    key.write_text(ENC_KEY + "\n")
    for cipher in ("chacha", "aes"):
        name = f"ENC{cipher.upper()}"
        store = work / f"store-{cipher}"
        log(f"making {name} ({size / MIB:.0f} MiB) with nats-server and a key, cipher {cipher}")
        t0 = time.perf_counter()
        facts = asyncio.run(make_data(server, store, work, [(name, name.lower(), size, "none")], False,
                                      jetstream_extra={"key": ENC_KEY, "cipher": cipher}))
        log(f"  made in {time.perf_counter() - t0:.0f}s")
        d = store / "jetstream" / ACCOUNT / "streams" / name
        nb = sum(p.stat().st_size for p in blk_files(d))
        r = run_child([jetdir, "--json", "--quiet", "verify", "--key-file", str(key), str(d)], capture_stdout=True)
        try:
            rep = json.loads(r.stdout)
        except json.JSONDecodeError:
            rep = {"ok": False, "error": r.stderr[-300:]}
        got = next((x for x in rep.get("streams", []) if x.get("name") == name), {})
        same = rep.get("ok") and got.get("messages") == facts[name]["messages"]
        enc = got.get("encryption") or {}
        checks.append(
            f"{name}: {facts[name]['messages']} messages, {len(blk_files(d))} blocks, {nb / MIB:.1f} MiB of "
            f"encrypted block bytes (cipher {cipher}); jetdir verify with the key: "
            + (f"ok, {got.get('messages')} messages (= server), cipher {enc.get('cipher')}" if same
               else f"**disagrees**: {json.dumps(rep)[:300]}")
        )
        subprocess.run(["sync"], check=True)
        argv = [jetdir, "--no-progress", "verify", "--key-file", str(key), str(d)]
        m_enc, v_enc = measure_beside(f"jetdir verify, deep ({name}, encrypted {cipher})", argv, nb,
                                      f"jetdir verify, deep (BENCH), in turn with {name}", plain_verify,
                                      m_ver.nbytes, repeats)
        conf = work / f"enc-{cipher}.conf"
        conf.write_text(f'jetstream {{\n  key: "{ENC_KEY}"\n  cipher: {cipher}\n}}\n')
        m_reb = measure_rebuild(server, d, facts[name]["messages"], nb, work, repeats, conf)
        # a tarball of the encrypted stream dir (`tar cf NAME.tar NAME/`), verified with the key
        tar = work / f"{name}.tar"
        subprocess.run(["tar", "cf", str(tar), "-C", str(d.parent), name], check=True)
        m_tar = measure(f"jetdir verify, deep (`tar cf` of {name}, with the key)",
                        [jetdir, "--no-progress", "verify", "--key-file", str(key), str(tar)], nb, repeats)
        tar.unlink()
        figures += [m_enc, v_enc, m_reb, m_tar]
        rows.append(ratio_row(f"encrypted ({cipher}): deep verify vs the plain stream's (same size)",
                              m_enc, v_enc, "time", 1.5, 10.0))
        rows.append(ratio_row(f"encrypted ({cipher}): deep verify vs the server's rebuild with the key",
                              m_enc, m_reb, "faster", 5.0, 0.25))
        rows.append(rss_row(f"encrypted ({cipher}): verify peak RSS", m_enc, f"server {m_reb.rss_mib:.0f} MiB"))
        rows.append(ratio_row(f"encrypted ({cipher}): verify of a .tar of the stream dir vs of the dir",
                              m_tar, m_enc, "time", None, None))
        rows.append(rss_row(f"encrypted ({cipher}): verify of a .tar of the stream dir, peak RSS", m_tar))
        if floors:
            f_enc = enc_floor(floors, blk_files(d), key, cipher, repeats, figures, checks)
            rows.append(ratio_row(f"floor of encrypted ({cipher}) deep verify (read + keystream + hash of every "
                                  "record, all cores) vs the plain verify", f_enc, m_ver, "time", None, None))
            rows.append(ratio_row(f"encrypted ({cipher}) deep verify vs its floor (read + keystream + hash)",
                                  m_enc, f_enc, "time", None, None))
            rows.append(Row(f"encrypted ({cipher}) deep verify CPU vs its floor's CPU (best runs)",
                            f"{m_enc.cpu:.2f} CPU-s", f"{f_enc.cpu:.2f} CPU-s",
                            f"{m_enc.cpu / f_enc.cpu:.2f}x" if f_enc.cpu > 0 else "", "(info)", ""))
        if not keep:
            shutil.rmtree(store, ignore_errors=True)
    return rows


def fmt_s(m: Measure) -> str:
    """min / median / max wall seconds."""
    return " / ".join(f"{w:.2f}" for w in m.walls) + " s"


def fmt_mbps(m: Measure) -> str:
    """max / median / min MB/s (the same runs as fmt_s: best first)."""
    return " / ".join(f"{m.nbytes / w / 1e6:.0f}" if w > 0 else "-" for w in m.walls) + " MB/s"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "**FAIL**"


# Smoke mode (--smoke): tiny data, and every target is replaced by a floor that only a collapse
# misses (a timing test it is not: the ratios of tiny runs are far from the full-size ones).
SMOKE = {"on": False}


def ratio_row(
    what: str,
    ours: Measure,
    base: Measure,
    how: str,
    target: Optional[float],
    smoke: Optional[float],
) -> Row:
    """A row comparing two measurements run for run (best with best, median with median,
    worst with worst). how: 'faster' (base/ours, higher is better, shown as Nx faster),
    'time' (ours/base, lower is better, shown as Nx the time), 'share' (base/ours as a
    percentage of the baseline's throughput, higher is better). The result is judged on the
    best-with-best ratio; `smoke` is the floor used instead under --smoke; None = info only."""
    o, b = ours.walls, base.walls
    if how == "time":
        r = [x / y if y > 0 else 0.0 for x, y in zip(o, b)]
    else:
        r = [y / x if x > 0 else 0.0 for x, y in zip(o, b)]
    if how == "faster":
        ratio = " / ".join(f"{x:.2f}" for x in r) + "x faster"
        tgt = f">= {target:g}x faster" if target is not None else "(info)"
    elif how == "time":
        ratio = " / ".join(f"{x:.2f}" for x in r) + "x the time"
        tgt = f"<= {target:g}x the time" if target is not None else "(info)"
    else:
        ratio = " / ".join(f"{100 * x:.0f}" for x in r) + "%"
        tgt = f">= {100 * target:.0f}%" if target is not None else "(info)"
    limit = smoke if SMOKE["on"] else target
    if SMOKE["on"] and target is not None:
        floor = f"{100 * smoke:.0f}%" if how == "share" else f"{smoke:g}x"
        tgt = f"smoke floor: {'<=' if how == 'time' else '>='} {floor}"
    result = ""
    if limit is not None:
        result = verdict(r[0] <= limit if how == "time" else r[0] >= limit)
    fmt = fmt_mbps if how == "share" else fmt_s
    return Row(what, fmt(ours), fmt(base), ratio, tgt, result)


def rss_row(what: str, m: Measure, base: str = "") -> Row:
    return Row(what, f"{m.rss_mib:.1f} MiB", base, "", f"< {RSS_LIMIT_MIB:.0f} MiB", verdict(m.rss_mib < RSS_LIMIT_MIB))


def dump_floor(floors: str, stream: Path, repeats: int, figures: list) -> Optional[Measure]:
    """bench/dumpfloor.rs (beside `floors`): BENCH's blocks read and every message rendered as
    `dump --json` renders it, all cores, nothing checked, classified or ordered: the floor of
    dump's walk pass."""
    exe = Path(floors).parent / "dumpfloor"
    if not floors or not exe.exists():
        return None
    wait_quiet()
    files = sorted((stream / "msgs").glob("*.blk"), key=lambda p: int(p.stem))
    r = subprocess.run([str(exe), "--repeats", str(repeats), *map(str, files)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"dumpfloor exited {r.returncode}: {r.stderr[-2000:]}")
    j = json.loads(r.stdout)
    m = Measure(f"floor of dump's walk: read + dump --json rendering of BENCH's {j['messages']} messages, "
                f"{j['threads']} threads", runs=[Run(wall=w, maxrss_kib=0, cpu=c, rc=0) for w, c in zip(j["wall"], j["cpu"])],
                nbytes=j["bytes"], note="in-process")
    figures.append(m)
    return m


def forensics_rows(jetdir: str, stream: Path, nbytes: int, work: Path, repeats: int, m_ver: Measure,
                   figures: list, floors: str = "") -> list[Row]:
    """Issue #12: dump (text and --json) to /dev/null and diff of two copies against deep verify
    of the same data; diff reads both copies, so its baseline is verify of both (2x). With the
    floors built: dump's floor (the deep verify that decides what the server serves, then the
    walk's floor) against deep verify, and dump against it."""
    def dump(*extra: str) -> list[str]:
        return [jetdir, "--no-progress", "dump", *extra, str(stream)]

    verify = [jetdir, "--no-progress", "verify", str(stream)]

    def beside(label: str) -> str:
        return f"jetdir verify, deep (BENCH), in turn with {label}"

    m_dump, v_dump = measure_beside("jetdir dump > /dev/null (BENCH)", dump(), nbytes,
                                    beside("dump"), verify, nbytes, repeats)
    m_dumpj, v_dumpj = measure_beside("jetdir dump --json > /dev/null (BENCH)", dump("--json"), nbytes,
                                      beside("dump --json"), verify, nbytes, repeats)
    copy2 = copy_stream(stream, work / "store-copy")
    m_diff, v_diff = measure_beside("jetdir diff of two copies of BENCH",
                                    [jetdir, "--no-progress", "diff", str(stream), str(copy2)], 2 * nbytes,
                                    beside("diff"), verify, nbytes, repeats)
    shutil.rmtree(work / "store-copy", ignore_errors=True)
    m_ver2x = Measure("jetdir verify, deep, of both copies (2x the runs in turn with diff)", nbytes=2 * nbytes,
                      runs=[Run(wall=2 * r.wall, maxrss_kib=r.maxrss_kib, cpu=2 * r.cpu, rc=0) for r in v_diff.runs])
    figures += [m_dump, v_dump, m_dumpj, v_dumpj, m_diff, v_diff]
    rows = [
        ratio_row("dump (text) to /dev/null: throughput vs deep verify", m_dump, v_dump, "share", 0.5, 0.05),
        ratio_row("dump --json to /dev/null: throughput vs deep verify", m_dumpj, v_dumpj, "share", 0.5, 0.05),
        ratio_row("diff of two copies (both copies' bytes) vs deep verify", m_diff, m_ver2x, "share", 0.5, 0.05),
    ]
    m_walk = dump_floor(floors, stream, repeats, figures)
    if m_walk is not None:
        m_floor = Measure("floor of dump --json: deep verify + the walk's floor", nbytes=nbytes,
                          runs=[Run(wall=a + b, maxrss_kib=0, cpu=0.0, rc=0)
                                for a, b in zip(sorted(r.wall for r in m_ver.runs), sorted(r.wall for r in m_walk.runs))])
        rows += [
            ratio_row("floor of dump's walk (read + dump --json rendering, all cores, nothing checked) vs deep verify",
                      m_walk, m_ver, "time", None, None),
            ratio_row("floor of dump --json (deep verify, then the walk's floor): throughput vs deep verify",
                      m_floor, m_ver, "share", None, None),
            ratio_row("dump --json vs its floor (deep verify + the walk's floor)", m_dumpj, m_floor, "time", None, None),
        ]
    for m, label in ((m_dump, "dump"), (m_dumpj, "dump --json"), (m_diff, "diff")):
        rows.append(rss_row(f"{label} peak RSS", m))
    return rows


def measure_pack(jetdir: str, stream: Path, nbytes: int, work: Path, repeats: int, keep: bool = False) -> Measure:
    """`jetdir pack --format v1` of the stream into work/pack-<i> (pack-0, the warm-up's, kept
    when `keep`)."""
    pk = lambda i: work / f"pack-{i}"  # noqa: E731

    def pk_prep(i: int) -> list[str]:
        shutil.rmtree(pk(i), ignore_errors=True)
        return [jetdir, "--no-progress", "pack", str(stream), "--out", str(pk(i)), "--format", "v1"]

    def pk_clean(i: int) -> None:
        if i > 0 or not keep:
            shutil.rmtree(pk(i), ignore_errors=True)

    return measure("jetdir pack --format v1 (BENCH)", [], nbytes, repeats, prepare=pk_prep, cleanup=pk_clean)


def pack_floor(floors: str, files: list[Path], repeats: int, figures: list,
               checks: list) -> tuple[Measure, Measure]:
    """bench/floors.rs --pack: BENCH's blocks read in order into pack's S2 framed writer (all
    cores) and its output SHA-256-hashed, nothing else; and the same with the verify pack makes
    of its source (every record's HighwayHash-64 checked as the blocks are read, all cores):
    what pack v1 cannot go below (CPU seconds measured in-process, user + system). Returns
    (the floor without the verify, the floor with it)."""
    wait_quiet()
    r = subprocess.run([floors, "--repeats", str(repeats), "--pack", *map(str, files)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"floors --pack exited {r.returncode}: {r.stderr[-2000:]}")
    j = json.loads(r.stdout)
    m = Measure(f"floor of pack: S2-encode + SHA-256 of BENCH's blocks, {j['threads']} threads",
                runs=[Run(wall=w, maxrss_kib=0, cpu=c, rc=0) for w, c in zip(j["pack"], j["pack_cpu"])],
                nbytes=j["bytes"], note="in-process")
    mv = Measure(f"floor of pack with its source's verify: read + HighwayHash-64 of every record + "
                 f"S2-encode + SHA-256 of BENCH's blocks, {j['threads']} threads",
                 runs=[Run(wall=w, maxrss_kib=0, cpu=c, rc=0)
                       for w, c in zip(j["pack_verified"], j["pack_verified_cpu"])],
                 nbytes=j["bytes"], note="in-process")
    figures += [m, mv]
    checks.append(f"pack floor (bench/floors.rs --pack): {j['bytes'] / MIB:.1f} MiB of blocks -> "
                  f"{j['pack_out'] / MIB:.1f} MiB of S2; with the verify: "
                  f"{j['pack_verified_bad']} record checksums wrong")
    return m, mv


def pack_rows(jetdir: str, floors: str, sdir: dict, blk: dict, facts: dict, server: str, work: Path, repeats: int,
              m_snap: Measure, figures: list, checks: list) -> tuple[list[Row], Optional[Measure]]:
    """pack --format v1 of BENCH against the snapshot API, its CPU, RSS and floor; the output
    verified by jetdir and restored by the server. Returns the rows and pack's measure (None when
    the binary cannot pack)."""
    rows: list[Row] = []
    st, detail = trial(jetdir, ["pack", str(sdir["TINY"]), "--out", str(work / "trial-pack"), "--format", "v1"])
    shutil.rmtree(work / "trial-pack", ignore_errors=True)
    if st != "ok":
        return [], None
    m_pk = measure_pack(jetdir, sdir["BENCH"], blk["BENCH"], work, repeats, keep=True)
    pk = lambda i: work / f"pack-{i}"  # noqa: E731
    figures.append(m_pk)
    checks.append(f"jetdir pack output: {dir_bytes(pk(0)) / MIB:.1f} MiB")
    rep = jetdir_json(jetdir, pk(0))
    checks.append(f"jetdir verify of jetdir's pack output: ok={rep.get('ok')}")
    err = restore_accepts(server, pk(0), "BENCH", facts["BENCH"]["messages"], work)
    checks.append(f"server restore API accepts jetdir's pack output: {'yes' if not err else 'NO: ' + err}")
    shutil.rmtree(pk(0), ignore_errors=True)
    rows.append(ratio_row("pack v1 vs the snapshot API (`nats stream backup`)", m_pk, m_snap, "faster", 2.0, 0.1))
    per_core = blk["BENCH"] / m_pk.cpu / 1e6 if m_pk.cpu > 0 else 0.0
    rows.append(Row(
        "pack: block bytes per CPU second (all work counted, best run)", f"{per_core:.0f} MB/s", "", "",
        "(info)", "",
    ))
    rows.append(rss_row("pack peak RSS", m_pk))
    if floors:
        f_pk, f_pv = pack_floor(floors, blk_files(sdir["BENCH"]), repeats, figures, checks)
        rows.append(ratio_row("floor of pack v1 (S2-encode + SHA-256 of the output alone, all cores, blocks in "
                              "page cache) vs the snapshot API", f_pk, m_snap, "faster", None, None))
        rows.append(ratio_row("pack v1 vs its floor (S2-encode + SHA-256)", m_pk, f_pk, "time", None, None))
        rows.append(Row("pack v1 CPU vs its floor's CPU (best runs)", f"{m_pk.cpu:.2f} CPU-s",
                        f"{f_pk.cpu:.2f} CPU-s", f"{m_pk.cpu / f_pk.cpu:.2f}x" if f_pk.cpu > 0 else "", "(info)", ""))
        # pack verifies its source (every record checksum) as it reads it: that is pack's work too
        rows.append(ratio_row("floor of pack v1 with the verify of its source (read + record checksums + "
                              "S2-encode + SHA-256, all cores) vs the snapshot API", f_pv, m_snap, "faster",
                              None, None))
        rows.append(ratio_row("pack v1 vs its floor with the verify (read + record checksums + S2-encode + "
                              "SHA-256)", m_pk, f_pv, "time", None, None))
        rows.append(Row("pack v1 CPU vs that floor's CPU (best runs)", f"{m_pk.cpu:.2f} CPU-s",
                        f"{f_pv.cpu:.2f} CPU-s", f"{m_pk.cpu / f_pv.cpu:.2f}x" if f_pv.cpu > 0 else "", "(info)",
                        ""))
    return rows, m_pk


def salvage_rows(jetdir: str, stream: Path, nbytes: int, work: Path, repeats: int, m_pk: Measure,
                 figures: list) -> list[Row]:
    """Issue #12: salvage of a clean stream against pack --format v1 of it: judged for salvage's
    default form (a stream dir: read twice, written, verified), shown for `--format v1` (that,
    then pack of the written stream, which verifies and reads it again)."""
    rows: list[Row] = []
    for fmt, label in (("dir", "salvage of a clean stream (a stream dir) vs pack --format v1: throughput"),
                       ("v1", "salvage of a clean stream --format v1 vs pack --format v1: throughput")):
        base = work / f"salvage-{fmt}"
        out = lambda i: base / f"{i}" / "BENCH"  # noqa: E731

        def prep(i: int) -> list[str]:
            shutil.rmtree(base, ignore_errors=True)
            out(i).parent.mkdir(parents=True)
            return [jetdir, "--no-progress", "salvage", str(stream), "--out", str(out(i)), "--format", fmt]

        def clean(i: int) -> None:
            shutil.rmtree(base, ignore_errors=True)

        m = measure(f"jetdir salvage --format {fmt} of clean BENCH", [], nbytes, repeats, prepare=prep, cleanup=clean)
        figures.append(m)
        judged = fmt == "dir"
        rows.append(ratio_row(label, m, m_pk, "share", 0.5 if judged else None, 0.05 if judged else None))
        rows.append(rss_row(f"salvage --format {fmt} peak RSS", m))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-gib", type=float, default=1.0, help="block bytes of the big stream (default 1)")
    ap.add_argument("--work", type=Path, help="work dir (default: a new temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per measurement, after 1 warm-up (default 5)")
    ap.add_argument("--jetdir", help="use this jetdir binary instead of building one")
    ap.add_argument("--no-s2", action="store_true", help="skip the S2-compressed stream")
    ap.add_argument("--no-v1", action="store_true", help="skip the V1 backup made with nats-server 2.9")
    ap.add_argument("--quiet-wait", type=float, default=30.0,
                    help="before each timed run, wait up to this many seconds for the machine to be idle (default 30)")
    ap.add_argument("--out", type=Path, help="results file (default bench/results-<date>.md)")
    ap.add_argument("--no-snap", action="store_true", help="skip the S2 vs snap comparison (bench/s2snap.rs)")
    ap.add_argument("--no-floors", action="store_true",
                    help="skip the floors of deep verify and of the V2 backup's verify (bench/floors.rs)")
    ap.add_argument("--no-enc", action="store_true", help="skip the encrypted streams (chacha, aes)")
    ap.add_argument("--enc-only", action="store_true",
                    help="only the plain stream BENCH and the encrypted ones: verify of each, the server's "
                         "rebuild of each")
    ap.add_argument("--forensics-only", action="store_true",
                    help="only the plain stream BENCH (and TINY): deep verify, dump, diff, salvage and pack "
                         "(issue #12's rows), on a quiet machine in a couple of minutes")
    ap.add_argument("--pack-only", action="store_true",
                    help="only the plain stream BENCH (and TINY): the snapshot API, pack --format v1 and pack's "
                         "floor (issue #14's pack row), on a quiet machine in a couple of minutes")
    ap.add_argument("--smoke", action="store_true",
                    help="CI-sized run: 24 MiB of data, 3 repeats, no V1 backup, short idle waits; every target "
                         "is replaced by a floor that only a collapse misses; no waiting for an idle machine; "
                         "writes no results file unless --out is given")
    args = ap.parse_args()
    if args.smoke:
        SMOKE["on"] = True
        args.size_gib = min(args.size_gib, 24 / 1024)
        args.repeats = min(args.repeats, 3)
        args.no_v1 = True
        args.quiet_wait = 0.0

    size = int(args.size_gib * GIB)
    # SIGTERM -> SystemExit, so that servers get stopped and the work dir removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    QUIET["max_wait"] = max(0.0, args.quiet_wait)
    repeats = max(1, args.repeats)
    server = natsbox.find_server("2.15")
    if not server:
        print("nats-server 2.15 not found ($REPO/.venv/bin/nats-server or NATS_SERVER_215)", file=sys.stderr)
        return 2

    # 1. build: the release build with debug info (Cargo.toml's `profiling` profile), so that a
    # figure can be looked into with perf on the very binary that was timed
    what = (([] if args.jetdir else ["--bin", "jetdir"]) + ([] if args.no_snap else ["--example", "s2snap"])
            + ([] if args.no_floors else ["--example", "floors", "--example", "dumpfloor"]))
    if what:
        log(f"cargo build --profile profiling {' '.join(what)}")
        b = subprocess.run(["cargo", "build", "--profile", "profiling", *what], cwd=REPO)
        if b.returncode != 0:
            print("cargo build --profile profiling failed", file=sys.stderr)
            return 2
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target.is_absolute():
        target = REPO / target
    jetdir = str(Path(args.jetdir).resolve()) if args.jetdir else str(target / "profiling" / "jetdir")
    s2snap = "" if args.no_snap else str(target / "profiling" / "examples" / "s2snap")
    floors = "" if args.no_floors else str(target / "profiling" / "examples" / "floors")

    work = args.work.resolve() if args.work else Path(tempfile.mkdtemp(prefix="jetdir-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(work).free
    need = int(size * 6.5)
    if free < need:
        print(f"need ~{need / GIB:.1f} GiB free in {work}, have {free / GIB:.1f}", file=sys.stderr)
        return 2
    log(f"work dir {work} ({free / GIB:.0f} GiB free)")
    notes = machine_notes(jetdir, server)
    skipped: list[str] = []
    rows: list[Row] = []
    figures: list[Measure] = []
    checks: list[str] = []
    try:
        # 2. the data
        store = work / "store"
        log(f"making the streams with nats-server ({size / GIB:.2f} GiB"
            + (")" if args.enc_only else " + 1/4 + S2 1/4)"))
        t0 = time.perf_counter()
        plan = [("BENCH", "bench", size, "none"), ("SMALL", "small", size // 4, "none")]
        if args.enc_only:
            plan = [("BENCH", "bench", size, "none")]
        if args.forensics_only or args.pack_only:
            plan = [("BENCH", "bench", size, "none")]
        if not args.no_s2 and not args.enc_only and not args.forensics_only and not args.pack_only:
            plan.append(("BENCHS2", "benchs2", size // 4, "s2"))
        if not args.enc_only:
            plan.append(("TINY", "tiny", 64 * 1024, "none"))
        facts = asyncio.run(make_data(server, store, work, plan, not args.enc_only))
        log(f"data made in {time.perf_counter() - t0:.0f}s")
        streams = store / "jetstream" / ACCOUNT / "streams"
        sdir = {n: streams / n for n in facts}
        blk = {n: sum(p.stat().st_size for p in blk_files(sdir[n])) for n in facts}
        raw = {n: uncompressed_bytes(sdir[n]) for n in facts}
        for n in facts:
            f = facts[n]
            nb = len(blk_files(sdir[n]))
            extra = ""
            if f["compression"] != "none":
                extra = f", {raw[n][1]} of {nb} blocks S2-compressed, {raw[n][0] / MIB:.1f} MiB uncompressed"
            checks.append(
                f"{n}: {f['messages']} messages ({f['num_deleted']} deleted), seqs {f['first_seq']}..{f['last_seq']}, "
                f"{nb} blocks, {blk[n] / MIB:.1f} MiB of block bytes{extra}"
            )
        if blk["BENCH"] < size:
            log(f"warning: BENCH has {blk['BENCH']} block bytes, less than {size}")

        # sanity: jetdir agrees with the server before we time it
        for n in facts:
            rep = jetdir_json(jetdir, sdir[n])
            got = next((s for s in rep.get("streams", []) if s.get("name") == n), {})
            if not rep.get("ok") or got.get("messages") != facts[n]["messages"]:
                checks.append(
                    f"**jetdir verify disagrees on {n}**: ok={rep.get('ok')}, messages={got.get('messages')} "
                    f"(server: {facts[n]['messages']}), problems: {json.dumps(rep.get('problems', []))[:300]}"
                )
            else:
                checks.append(f"jetdir verify {n}: ok, {got.get('messages')} messages (= server)")

        subprocess.run(["sync"], check=True)  # no writeback of the new data during the timings

        # 3a/b. raw read and verify
        def cat(n: str) -> list[str]:
            return ["cat", *map(str, blk_files(sdir[n]))]

        def verify(path: Path, *extra: str) -> list[str]:
            return [jetdir, "--no-progress", "verify", *extra, str(path)]

        warm = resident_share(blk_files(sdir["BENCH"]))
        m_ver, m_cat = measure_beside("jetdir verify, deep (BENCH)", verify(sdir["BENCH"]), blk["BENCH"],
                                      "raw read `cat msgs/*.blk` (BENCH)", cat("BENCH"), blk["BENCH"], repeats)
        after = resident_share(blk_files(sdir["BENCH"]))
        if warm is not None and after is not None:
            notes.append(f"page cache: BENCH's block files {100 * warm:.1f}% resident before the timed verify "
                         f"and `cat` runs (and their warm-ups), {100 * after:.1f}% after them (fincore)")
        if args.enc_only:
            m_reb = measure_rebuild(server, sdir["BENCH"], facts["BENCH"]["messages"], blk["BENCH"], work, repeats)
            figures += [m_cat, m_ver, m_reb]
            rows.append(ratio_row("deep verify vs the server's rebuild on start (index.db removed)",
                                  m_ver, m_reb, "faster", 5.0, 0.25))
            rows += enc_rows(server, jetdir, work, size, repeats, m_ver, verify(sdir["BENCH"]), figures, checks,
                             floors, args.keep)
            skipped.append("everything but the plain and encrypted streams' verify and rebuild (--enc-only)")
            return finish(args, repeats, notes, checks, rows, figures, skipped, work)
        if args.forensics_only:
            figures += [m_cat, m_ver]
            rows += forensics_rows(jetdir, sdir["BENCH"], blk["BENCH"], work, repeats, m_ver, figures, floors)
            m_pk = measure_pack(jetdir, sdir["BENCH"], blk["BENCH"], work, repeats)
            figures.append(m_pk)
            rows += salvage_rows(jetdir, sdir["BENCH"], blk["BENCH"], work, repeats, m_pk, figures)
            skipped.append("everything but BENCH's verify, dump, diff, salvage and pack (--forensics-only)")
            return finish(args, repeats, notes, checks, rows, figures, skipped, work)
        if args.pack_only:
            figures += [m_cat, m_ver]
            m_snap, _ = measure_snapshot(server, store, "BENCH", work, blk["BENCH"], repeats)
            figures.append(m_snap)
            prows, m_pk = pack_rows(jetdir, floors, sdir, blk, facts, server, work, repeats, m_snap, figures, checks)
            rows += prows
            if m_pk is None:
                skipped.append("`jetdir pack --format v1`: the binary cannot pack")
            skipped.append("everything but BENCH's snapshot and pack (--pack-only)")
            return finish(args, repeats, notes, checks, rows, figures, skipped, work)
        m_quick = measure("jetdir verify --quick (BENCH)", verify(sdir["BENCH"], "--quick"), blk["BENCH"], repeats)
        m_cat_s = measure("raw read `cat msgs/*.blk` (SMALL)", cat("SMALL"), blk["SMALL"], repeats)
        flipped = flipped_byte_found(jetdir, sdir["SMALL"], work)
        checks.append(f"timed `jetdir verify` (deep) on a copy of SMALL with one payload byte flipped: {flipped}")
        rows.append(Row("deep verify finds a flipped payload byte", "", "", "", "exit 1, record checksum",
                        verdict(flipped.startswith("found"))))
        m_ver_s = measure("jetdir verify, deep (SMALL, 1/4 size)", verify(sdir["SMALL"]), blk["SMALL"], repeats)
        # 3c. the server's own rebuild
        m_reb = measure_rebuild(server, sdir["BENCH"], facts["BENCH"]["messages"], blk["BENCH"], work, repeats)
        figures += [m_cat, m_ver, m_quick, m_cat_s, m_ver_s, m_reb]

        rows.append(ratio_row("deep verify vs the server's rebuild on start (index.db removed)",
                              m_ver, m_reb, "faster", 5.0, 0.25))
        rows.append(ratio_row("deep verify throughput vs `cat` of the same blocks",
                              m_ver, m_cat, "share", 0.75, 0.02))
        rows.append(ratio_row("verify --quick vs server rebuild", m_quick, m_reb, "faster", None, None))
        for m, label in ((m_ver, f"{blk['BENCH'] / MIB:.0f} MiB"), (m_ver_s, f"{blk['SMALL'] / MIB:.0f} MiB"), (m_quick, "--quick")):
            rows.append(rss_row(f"verify peak RSS ({label})", m, f"server {m_reb.rss_mib:.0f} MiB"))

        # 3d. forensics (issue #12)
        rows += forensics_rows(jetdir, sdir["BENCH"], blk["BENCH"], work, repeats, m_ver, figures, floors)

        # S2 variant
        if "BENCHS2" in facts:
            n = "BENCHS2"
            m_cat2 = measure("raw read `cat msgs/*.blk` (BENCHS2)", cat(n), blk[n], repeats)
            m_ver2 = measure("jetdir verify, deep (BENCHS2, S2 blocks)", verify(sdir[n]), blk[n], repeats)
            m_reb2 = measure_rebuild(server, sdir[n], facts[n]["messages"], blk[n], work, repeats)
            figures += [m_cat2, m_ver2, m_reb2]
            unc = raw[n][0]
            rows.append(ratio_row("S2 stream: verify (deep) vs server rebuild", m_ver2, m_reb2, "faster", 5.0, 0.25))
            rows.append(Row(
                "S2 stream: verify throughput (uncompressed MB/s)",
                f"{unc / m_ver2.wall / 1e6:.0f} MB/s", f"{unc / m_reb2.wall / 1e6:.0f} MB/s (server)", "",
                "(info)", "",
            ))
            rows.append(rss_row("S2 stream: verify peak RSS", m_ver2, f"server {m_reb2.rss_mib:.0f} MiB"))
        else:
            skipped.append("S2-compressed stream (--no-s2)")

        # encrypted streams of the same size (issue #13)
        if not args.no_enc:
            rows += enc_rows(server, jetdir, work, size, repeats, m_ver, verify(sdir["BENCH"]), figures, checks,
                             floors, args.keep)
        else:
            skipped.append("encrypted streams (--no-enc)")

        # 4. backups
        m_snap, backup = measure_snapshot(server, store, "BENCH", work, blk["BENCH"], repeats)
        backup_bytes = dir_bytes(backup)
        checks.append(f"snapshot of BENCH: {backup_bytes / MIB:.1f} MiB (backup.json + stream.tar.s2)")
        figures.append(m_snap)
        rep = jetdir_json(jetdir, backup)
        checks.append(
            f"jetdir verify of the server's backup: ok={rep.get('ok')} (2.15 writes V2 = NATSARC1, which "
            "carries no record checksums: verify checks S2 CRCs, structure and state)"
        )
        m_vb, v_vb = measure_beside("jetdir verify, deep (server backup of BENCH)", verify(backup), blk["BENCH"],
                                    "jetdir verify, deep (BENCH), in turn with its backup", verify(sdir["BENCH"]),
                                    blk["BENCH"], repeats)
        figures += [m_vb, v_vb]
        rows.append(ratio_row("verify of a V2 backup vs verify of the same stream on disk",
                              m_vb, v_vb, "time", 2.0, 10.0))
        rows.append(rss_row("verify of a backup: peak RSS", m_vb))
        if floors:
            rows += floor_rows(floors, blk_files(sdir["BENCH"]), backup / "stream.tar.s2", repeats, m_cat, m_ver,
                               m_vb, figures, checks)
        else:
            skipped.append("floors of deep verify and of the V2 backup's verify (--no-floors)")

        # S2 against snap, one core, on BENCH's block bytes (and the server's stream.tar.s2)
        if s2snap:
            rows += snap_rows(s2snap, blk_files(sdir["BENCH"]), backup / "stream.tar.s2", repeats, figures, checks)
        else:
            skipped.append("S2 vs snap (--no-snap)")

        # V1 backup (tar inside S2, blocks with record checksums): only 2.9.10 still writes one
        server29 = None if args.no_v1 else natsbox.find_server("2.9")
        if server29:
            n = "LEGACY"
            store29 = work / "store29"
            log(f"making {n} ({size // 4 / MIB:.0f} MiB) with nats-server {natsbox.server_version(server29)}")
            f29 = asyncio.run(make_data(server29, store29, work, [(n, "legacy", size // 4, "none")], False))
            d29 = store29 / "jetstream" / ACCOUNT / "streams" / n
            b29 = sum(p.stat().st_size for p in blk_files(d29))
            subprocess.run(["sync"], check=True)
            m_snap1, backup1 = measure_snapshot(server29, store29, n, work, b29, repeats)
            rep = jetdir_json(jetdir, backup1)
            got = next((x for x in rep.get("streams", []) if x.get("name") == n), {})
            checks.append(
                f"{n} (2.9.10): {f29[n]['messages']} messages, {len(blk_files(d29))} blocks, {b29 / MIB:.1f} MiB; "
                f"V1 backup {dir_bytes(backup1) / MIB:.1f} MiB; jetdir verify of it: ok={rep.get('ok')}, "
                f"{got.get('messages')} messages"
            )
            m_vb1, m_v29 = measure_beside(f"jetdir verify, deep (V1 backup of {n})", verify(backup1), b29,
                                          f"jetdir verify, deep ({n} on disk, 2.9 layout)", verify(d29), b29,
                                          repeats)
            figures += [m_snap1, m_v29, m_vb1]
            rows.append(ratio_row("verify of a V1 backup (2.9.10) vs verify of that stream on disk",
                                  m_vb1, m_v29, "time", 2.0, 10.0))
            rows.append(rss_row("verify of a V1 backup: peak RSS", m_vb1))
            if floors:
                rows += v1_floor_rows(floors, backup1 / "stream.tar.s2", n, repeats, m_v29, m_vb1, figures, checks)
            if not args.keep:
                shutil.rmtree(store29, ignore_errors=True)
                shutil.rmtree(backup1, ignore_errors=True)
        else:
            skipped.append("V1 (tar) backup verify: no nats-server 2.9 (or --no-v1)")

        # extract (only when implemented)
        st, detail = trial(jetdir, ["extract", str(work / "tiny-backup"), "--store-dir", str(work / "trial-extract"), "--create"])
        shutil.rmtree(work / "trial-extract", ignore_errors=True)
        if st != "ok":
            skipped.append(f"`jetdir extract` vs restore API: {detail}")
        else:
            ex_dirs = lambda i: work / f"extract-{i}"  # noqa: E731

            def ex_prep(i: int) -> list[str]:
                shutil.rmtree(ex_dirs(i), ignore_errors=True)
                return [jetdir, "--no-progress", "extract", str(backup), "--store-dir", str(ex_dirs(i)), "--create"]

            def ex_clean(i: int) -> None:
                if i > 0:
                    shutil.rmtree(ex_dirs(i), ignore_errors=True)

            m_ex = measure("jetdir extract (server backup of BENCH)", [], blk["BENCH"], repeats,
                           prepare=ex_prep, cleanup=ex_clean)
            err = server_accepts(server, ex_dirs(0), "BENCH", facts["BENCH"]["messages"], work)
            checks.append(f"server starts on jetdir's extract with all messages: {'yes' if not err else 'NO: ' + err}")
            shutil.rmtree(ex_dirs(0), ignore_errors=True)
            m_rest = measure_restore(server, backup, "BENCH", facts["BENCH"]["messages"], work, blk["BENCH"], repeats)
            figures += [m_ex, m_rest]
            rows.append(ratio_row("extract vs the restore API", m_ex, m_rest, "faster", 5.0, 0.25))
            rows.append(rss_row("extract peak RSS", m_ex))

        # pack (only when implemented)
        prows, m_pk = pack_rows(jetdir, floors, sdir, blk, facts, server, work, repeats, m_snap, figures, checks)
        if m_pk is None:
            skipped.append("`jetdir pack --format v1` vs snapshot API, and S2 throughput: the binary cannot pack")
        else:
            rows += prows
            rows += salvage_rows(jetdir, sdir["BENCH"], blk["BENCH"], work, repeats, m_pk, figures)
        notes.append(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        notes.append(
            f"waited {QUIET['waited']:.0f} s in total for the machine to go idle (< "
            f"{100 * QUIET['threshold']:.0f}% busy) before timed runs (at most {QUIET['max_wait']:.0f} s each)"
        )
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    return finish(args, repeats, notes, checks, rows, figures, skipped)


def finish(args, repeats, notes, checks, rows, figures, skipped, work: Optional[Path] = None) -> int:
    """Render, print and write the results (and remove `work` unless --keep)."""
    if work is not None:
        notes.append(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    text = render(args, repeats, notes, checks, rows, figures, skipped)
    print(text)
    out = args.out or (None if args.smoke else REPO / "bench" / f"results-{datetime.date.today().isoformat()}.md")
    if out:
        out.write_text(text)
        log(f"wrote {out}")
    return 1 if any("FAIL" in r.result for r in rows) else 0


def render(args, repeats, notes, checks, rows, figures, skipped) -> str:
    L = [f"# jetdir benchmark, {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}", ""]
    L.append(f"`bench/run.py --size-gib {args.size_gib:g}{' --smoke' if args.smoke else ''}`: every timed command "
             f"ran {repeats} times, each after one untimed warm-up run of the same command (page cache warm); "
             "times are min / median / max of those runs, throughputs max / median / min (the same runs), and "
             "ratios compare best with best / median with median / worst with worst. A target is judged on the "
             "best-with-best ratio. A judged ratio of two jetdir commands, and verify against `cat`, "
             "comes from runs of the two taken in turn (X, then its baseline, round after round), so that "
             "this machine's drift in speed hits both alike; those baselines have rows of their own "
             "('in turn with ...'). Peak RSS is the highest peak RSS (GNU time `%M`) of those runs. "
             "MB = 10^6 bytes of block files on disk.")
    if args.smoke:
        L.append("")
        L.append("**Smoke run**: tiny data; the targets below are collapse floors, not the real targets.")
    L += ["", "## Machine", ""] + [f"- {n}" for n in notes]
    L += ["", "## Data (made by the real server in this run)", ""] + [f"- {c}" for c in checks]
    L += ["", "## Targets", "", "| what | jetdir | baseline | ratio | target | result |", "|---|---|---|---|---|---|"]
    L += [f"| {r.what} | {r.ours} | {r.base} | {r.ratio} | {r.target} | {r.result} |" for r in rows]
    L += ["", "## All figures", "",
          "| measurement | wall min / median / max | all runs | MB/s (best / median / worst) | peak RSS | CPU s (user+sys, best run) | others' CPU |",
          "|---|---|---|---|---|---|---|"]
    for m in figures:
        # timed inside s2snap or floors: one thread, wall = CPU (floors on more threads: no CPU)
        inproc = (m.rss_mib == 0 and m.cpu > 0) or m.note == "in-process"
        rss = f"{m.rss_mib:.1f} MiB" if m.rss_mib > 0 else ("n/a (in-process)" if inproc else "n/a (in-server)")
        cpu = f"{m.cpu:.2f}" if m.rss_mib > 0 or (inproc and m.cpu > 0) else "n/a"
        other = f"{100 * m.best.other:.0f}%" if m.best.other is not None else "n/a"
        runs = " ".join(f"{r.wall:.3f}" for r in m.runs)
        walls = " / ".join(f"{w:.3f}" for w in m.walls)
        L.append(f"| {m.name} | {walls} s | {runs} | {fmt_mbps(m).removesuffix(' MB/s')} | {rss} | {cpu} | {other} |")
    L += ["", "Notes: `cat` is one thread; jetdir uses every core (rayon). \"others' CPU\" = share of the "
          "machine's CPU time used by processes other than the measured one during its best run "
          "(other helpers share this machine). The server start-up time runs from fork until "
          "`$JS.API.STREAM.INFO` answers with the full message count (the server restores streams "
          "before it listens); its CPU includes the clean shutdown that follows. The snapshot and "
          "restore API times run from the API request until the last chunk / final reply (nats-py "
          "client in this process, like `nats stream backup|restore`)."]
    L += ["", "## Skipped", ""] + ([f"- {s}" for s in skipped] or ["- nothing"])
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    sys.exit(main())
