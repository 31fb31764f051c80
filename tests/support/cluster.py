"""A 3-node nats-server cluster on 127.0.0.1 for tests/cluster_e2e.rs.

  cluster.py --server BIN --out DIR --phase setup
      starts n1, n2, n3 (cluster C1, routes between them, own store dirs under DIR/nK/store),
      creates R3 stream R3A (5 msgs, durable DUR), R1 stream ONE, then the orphan case:
      R1 stream GONE and durable GC on R3A are created, their dirs copied aside, then deleted
      through the API; all servers stopped (SIGTERM to each PID); the copies are put into n1's
      store (GONE as a stream dir, GC under R3A/obs/), and a copy of ONE (placed on n2 by its
      server tag) too. Writes DIR/facts.json.
  cluster.py --server BIN --out DIR --phase restart
      starts the three nodes again on their stores, waits until the dirs named by --expect-gone
      are gone from n1 (or 45 s: the server's orphan check runs 30 s after meta recovery; a
      meta snapshot from the leader removes orphans at once, silently), then 2 s more, stops
      them, and writes DIR/after.json: which stream and consumer dirs n1 still has, and the
      orphan lines of its log.

Every server is stopped by its own PID; nothing else is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import natsbox  # noqa: E402

NAMES = ["n1", "n2", "n3"]
DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def peer_id(name: str) -> str:
    """nats-server's getHash(server name): the raft peer id."""
    d = hashlib.sha256(name.encode()).digest()
    return "".join(DIGITS[b % 62] for b in d[:8])


class Node:
    def __init__(self, binary: str, out: Path, name: str):
        self.binary, self.name = binary, name
        self.dir = out / name
        self.store = self.dir / "store"
        self.port = 0
        self.cport = 0
        self.mport = 0
        self.proc = None
        self.log = self.dir / "server.log"

    def start(self, routes: list[int]):
        import subprocess

        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "server.conf"
        rs = ", ".join(f"nats://127.0.0.1:{p}" for p in routes if p != self.cport)
        conf.write_text(
            f"server_name: {self.name}\nserver_tags: [{json.dumps(self.name)}]\n"
            f"listen: 127.0.0.1:{self.port}\nhttp: 127.0.0.1:{self.mport}\n"
            f"jetstream {{ store_dir: {json.dumps(str(self.store))} }}\n"
            f"cluster {{ name: C1, listen: 127.0.0.1:{self.cport}, routes: [{rs}] }}\n"
        )
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()

    def stop(self):
        import os
        import signal

        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)


def start_all(nodes: list[Node]):
    for n in nodes:
        n.port, n.cport, n.mport = natsbox.free_port(), natsbox.free_port(), natsbox.free_port()
    for n in nodes:
        n.start([m.cport for m in nodes])


# The meta leader places a replica only on a peer whose statsz it has heard. A fresh
# 2.10.26 cluster sometimes never gets there ('no suitable peers for placement' for 90 s
# and more, seen in CI and here, after routes closed as duplicates at start): the cluster
# is then started again from empty stores (`start_placed`).
PLACEMENT_WAIT = 30.0
PLACEMENT_TRIES = 3


def log_tails(out: Path, lines: int = 25) -> str:
    """The last lines of every server log under `out`, for a failure's message."""
    parts = []
    for log in sorted(out.glob("*/server.log")):
        text = log.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"--- {log} (last {len(text)} lines)\n" + "\n".join(text))
    return "\n".join(parts)


def run_phase(out: Path, f):
    """Run one phase; when it fails, print the servers' log tails before the traceback."""
    try:
        return f()
    except BaseException:
        print(log_tails(out), file=sys.stderr)
        raise


async def retry(f, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await f()
        except Exception:  # noqa: BLE001 - the cluster may still be electing
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.25)


async def connect(node: Node):
    return await retry(lambda: natsbox.connect(f"nats://127.0.0.1:{node.port}"))


async def start_placed(nodes: list[Node], cfg: dict):
    """Start `nodes` on empty stores and create stream `cfg`; when no placement comes within
    PLACEMENT_WAIT, stop them, empty their stores and start again (PLACEMENT_TRIES times).
    Returns the client connection to the first node."""
    for attempt in range(1, PLACEMENT_TRIES + 1):
        start_all(nodes)
        nc = None
        try:
            nc = await connect(nodes[0])
            await retry(lambda: natsbox.js_api(nc, "$JS.API.INFO", timeout=2))
            await retry(lambda: natsbox.create_stream(nc, cfg), PLACEMENT_WAIT)
            return nc
        except BaseException as e:
            if nc is not None:
                await nc.close()
            for n in nodes:
                n.stop()
            if attempt == PLACEMENT_TRIES or not isinstance(e, Exception):
                raise
            print(f"cluster: {cfg['name']} not placed ({e}); starting the cluster again",
                  file=sys.stderr)
            for n in nodes:
                shutil.rmtree(n.store, ignore_errors=True)


async def setup(binary: str, out: Path) -> dict:
    nodes = [Node(binary, out, n) for n in NAMES]
    nc = await start_placed(nodes, {"name": "R3A", "subjects": ["r3a.>"], "num_replicas": 3})
    try:
        api = natsbox.js_api
        for i in range(5):
            await retry(lambda i=i: natsbox.publish(nc, f"r3a.{i}", f"x{i}".encode()))
        await retry(lambda: natsbox.create_consumer(
            nc, "R3A", {"durable_name": "DUR", "ack_policy": "explicit"}))
        await retry(lambda: natsbox.create_stream(
            nc, {"name": "ONE", "subjects": ["one.>"], "num_replicas": 1,
                 "placement": {"tags": ["n2"]}}), PLACEMENT_WAIT)
        await retry(lambda: natsbox.publish(nc, "one.a", b"1"))
        # the orphan case: a stream and a consumer the meta group will not know
        await retry(lambda: natsbox.create_stream(
            nc, {"name": "GONE", "subjects": ["gone.>"], "num_replicas": 1}), PLACEMENT_WAIT)
        await retry(lambda: natsbox.publish(nc, "gone.a", b"g"))
        await retry(lambda: natsbox.create_consumer(
            nc, "R3A", {"durable_name": "GC", "ack_policy": "explicit"}))
        info = await retry(lambda: natsbox.stream_info(nc, "GONE"))
        gone_on = info["cluster"]["leader"]
        one_on = (await retry(lambda: natsbox.stream_info(nc, "ONE")))["cluster"]["leader"]
        await asyncio.sleep(1.0)  # let the files settle
        aside = out / "aside"
        src = next(n for n in nodes if n.name == gone_on).store / "jetstream/$G/streams/GONE"
        shutil.copytree(src, aside / "GONE")
        shutil.copytree(nodes[0].store / "jetstream/$G/streams/R3A/obs/GC", aside / "GC")
        await retry(lambda: api(nc, "$JS.API.CONSUMER.DELETE.R3A.GC"))
        await retry(lambda: api(nc, "$JS.API.STREAM.DELETE.GONE"))
        await asyncio.sleep(1.0)
        await nc.close()
        jsz = raft_groups(nodes[0])
    finally:
        for n in nodes:
            n.stop()
    n1 = nodes[0].store / "jetstream/$G/streams"
    shutil.copytree(aside / "GONE", n1 / "GONE")
    # ONE is assigned to n2 only: a copy on n1 is not n1's
    shutil.copytree(nodes[1].store / "jetstream/$G/streams/ONE", n1 / "ONE")
    shutil.copytree(aside / "GC", n1 / "R3A/obs/GC")
    return {
        "store": str(nodes[0].store),
        "peers": {n: peer_id(n) for n in NAMES},
        "one_on": one_on,
        "jsz": jsz,
        "gone_on": gone_on,
    }


def raft_groups(node: Node) -> dict:
    """The server's own view (monitoring /jsz with raft=true): each stream's and consumer's
    raft group name, and the meta group's cluster size."""
    import urllib.request

    url = (f"http://127.0.0.1:{node.mport}/jsz?accounts=true&streams=true&consumers=true"
           "&raft=true")
    with urllib.request.urlopen(url, timeout=10) as r:
        j = json.load(r)
    groups = {}
    for acc in j.get("account_details", []):
        for st in acc.get("stream_detail", []):
            if st.get("stream_raft_group"):
                groups[st["name"]] = st["stream_raft_group"]
            for c in st.get("consumer_raft_groups") or []:
                groups[f"{st['name']}/{c['name']}"] = c["raft_group"]
    return {"groups": groups, "meta_cluster_size": j.get("meta_cluster", {}).get("cluster_size")}


def dirs_of(store: Path) -> list[str]:
    base = store / "jetstream/$G/streams"
    out = []
    for s in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
        out.append(s.name)
        obs = s / "obs"
        if obs.is_dir():
            out += [f"{s.name}/{c.name}" for c in sorted(obs.iterdir()) if c.is_dir()]
    return out


async def restart(binary: str, out: Path, expect_gone: list[str]) -> dict:
    nodes = [Node(binary, out, n) for n in NAMES]
    log_start = nodes[0].log.stat().st_size if nodes[0].log.exists() else 0
    start_all(nodes)
    try:
        nc = await connect(nodes[0])
        await retry(lambda: natsbox.js_api(nc, "$JS.API.INFO", timeout=2))
        await nc.close()
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            if not set(expect_gone) & set(dirs_of(nodes[0].store)):
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(2.0)
    finally:
        for n in nodes:
            n.stop()
    text = nodes[0].log.read_bytes()[log_start:].decode(errors="replace")
    return {
        "dirs": dirs_of(nodes[0].store),
        "orphan_lines": [ln for ln in text.splitlines() if "orphaned" in ln],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--phase", choices=["setup", "restart"], required=True)
    ap.add_argument("--expect-gone", nargs="*", default=[])
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.phase == "setup":
        facts = run_phase(out, lambda: asyncio.run(setup(a.server, out)))
        facts["dirs"] = dirs_of(Path(facts["store"]))
        (out / "facts.json").write_text(json.dumps(facts, indent=1))
    else:
        after = run_phase(out, lambda: asyncio.run(restart(a.server, out, a.expect_gone)))
        (out / "after.json").write_text(json.dumps(after, indent=1))


if __name__ == "__main__":
    main()
