"""The raft logs of a stream and a consumer group against their dirs, for tests/cluster_log_e2e.rs.

  cluster_log.py --server BIN --out DIR --phase setup
      starts n1, n2, n3 (as cluster.py), creates R3 stream LOG (5 msgs) and R3 pull durables
      LC (explicit acks: 3 fetched, 2 acked), LA (ack all: 3 fetched, the 2nd acked), LN (ack
      none: 3 fetched), LS (explicit, filter log.skip, which no message has: a pull request
      finds nothing and the leader skips it ahead, `updateSkipOp`) and, on 2.14+, LR
      (explicit: 3 fetched, 2 acked), stops every node (SIGTERM), copies n1's LOG dir aside;
      starts them again, publishes 5 more (seqs 6..10), fetches 5 on LC and LA (LC acks 4 of
      them, LA the 4th), 7 on LN (4..10), pulls on LS again (a skip to 11), an empty pull on
      LN and LS (its pull-request ops carry the commit of what came before into n1's log), and
      on LR fetches 7 (4..10), acks them, resets it to seq 4 (`$JS.API.CONSUMER.RESET.LOG.LR`,
      `resetSeqOp`), fetches 2 (4 and 5 again) and acks the first; records what the cluster reports (STREAM.INFO,
      CONSUMER.INFO), then kills every node (SIGKILL: a crash, the raft logs keep what the
      dirs may not) and puts the old LOG dir back into n1. Writes DIR/facts.json.
  cluster_log.py --server BIN --out DIR --phase alone
      starts n1 without n2 and n3 (no quorum: it applies what its own log says is committed,
      nothing else), routed to a server without JetStream (raft replays only once a route
      is up), waits 5 s after the route, stops both (SIGTERM).
  cluster_log.py --server BIN --out DIR --phase all
      starts the three nodes, waits for LOG's leader, records STREAM.INFO and CONSUMER.INFO,
      stops them (SIGTERM). Writes DIR/after.json.

Every server is stopped by its own PID; nothing else is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import natsbox  # noqa: E402
from cluster import (  # noqa: E402
    NAMES, Node, connect, peer_id, retry, run_phase, start_all, start_placed)


def kill(n: Node):
    if n.proc is not None and n.proc.poll() is None:
        os.kill(n.proc.pid, signal.SIGKILL)
        n.proc.wait(timeout=30)


async def consumer(nc, name: str = "LC") -> dict:
    c = await retry(lambda: natsbox.consumer_info(nc, "LOG", name))
    return {
        "delivered_stream_seq": c["delivered"]["stream_seq"],
        "delivered_consumer_seq": c["delivered"]["consumer_seq"],
        "ack_floor_stream_seq": c["ack_floor"]["stream_seq"],
        "ack_floor_consumer_seq": c["ack_floor"]["consumer_seq"],
        "num_ack_pending": c["num_ack_pending"],
    }


async def stream(nc) -> dict:
    s = await retry(lambda: natsbox.stream_info(nc, "LOG"))
    return {"messages": s["state"]["messages"], "last_seq": s["state"]["last_seq"]}


async def pull_and_ack(nc, n: int, acks: int):
    got = []
    while len(got) < n:
        got += await natsbox.fetch(nc, "LOG", "LC", n - len(got), timeout=2.0)
    for m in got[:acks]:
        await natsbox.ack(nc, m)


async def pull_and_ack_nth(nc, n: int, nth: int):
    """LA (ack all): fetch n, ack only the nth (1-based): everything up to it is acked."""
    got = []
    while len(got) < n:
        got += await natsbox.fetch(nc, "LOG", "LA", n - len(got), timeout=2.0)
    await natsbox.ack(nc, got[nth - 1])


def has_reset(binary: str) -> bool:
    """The consumer reset API (`$JS.API.CONSUMER.RESET`, `resetSeqOp`) is 2.14+."""
    major, minor = (int(x) for x in natsbox.server_version(binary).split(".")[:2])
    return (major, minor) >= (2, 14)


async def fetch_n(nc, name: str, n: int) -> list:
    got = []
    while len(got) < n:
        got += await natsbox.fetch(nc, "LOG", name, n - len(got), timeout=2.0)
    return got


async def empty_pull(nc, name: str):
    """A pull request that finds nothing (it expires after 0.5 s)."""
    got = await natsbox.fetch(nc, "LOG", name, 1, timeout=0.5)
    if got:
        raise SystemExit(f"{name}: an empty pull got {len(got)} message(s)")


async def reset(nc, name: str, seq: int) -> dict:
    return await natsbox.js_api(nc, f"$JS.API.CONSUMER.RESET.LOG.{name}", {"seq": seq})


async def consumers(nc, names: list[str]) -> dict:
    return {n: await consumer(nc, n) for n in names}


async def setup(binary: str, out: Path) -> dict:
    nodes = [Node(binary, out, n) for n in NAMES]
    extra = ["LN", "LS"] + (["LR"] if has_reset(binary) else [])
    nc = await start_placed(nodes, {"name": "LOG", "subjects": ["log.>"], "num_replicas": 3})
    try:
        for i in range(5):
            await retry(lambda i=i: natsbox.publish(nc, f"log.{i}", f"m{i}".encode()))
        await retry(lambda: natsbox.create_consumer(
            nc, "LOG", {"durable_name": "LC", "ack_policy": "explicit"}))
        await retry(lambda: natsbox.create_consumer(
            nc, "LOG", {"durable_name": "LA", "ack_policy": "all"}))
        await retry(lambda: natsbox.create_consumer(
            nc, "LOG", {"durable_name": "LN", "ack_policy": "none"}))
        await retry(lambda: natsbox.create_consumer(
            nc, "LOG", {"durable_name": "LS", "ack_policy": "explicit",
                        "filter_subject": "log.skip"}))
        if "LR" in extra:
            await retry(lambda: natsbox.create_consumer(
                nc, "LOG", {"durable_name": "LR", "ack_policy": "explicit"}))
        await pull_and_ack(nc, 3, 2)
        await pull_and_ack_nth(nc, 3, 2)
        await fetch_n(nc, "LN", 3)
        await empty_pull(nc, "LS")
        if "LR" in extra:
            for m in (await fetch_n(nc, "LR", 3))[:2]:
                await natsbox.ack(nc, m)
        first = {"stream": await stream(nc), "consumer": await consumer(nc),
                 "la": await consumer(nc, "LA"), "more": await consumers(nc, extra)}
        await nc.close()
        await asyncio.sleep(1.0)
    finally:
        for n in nodes:
            n.stop()
    old = out / "aside" / "LOG"
    shutil.copytree(nodes[0].store / "jetstream/$G/streams/LOG", old)

    start_all(nodes)
    try:
        nc = await connect(nodes[0])
        await retry(lambda: natsbox.js_api(nc, "$JS.API.INFO", timeout=2))
        await retry(lambda: natsbox.stream_info(nc, "LOG"), 30)
        # every consumer has a leader again (only the leader answers CONSUMER.INFO): a pull
        # request without one goes unanswered and proposes nothing
        for name in ["LC", "LA"] + extra:
            await retry(lambda name=name: consumer(nc, name), 30)
        for i in range(5, 10):
            await retry(lambda i=i: natsbox.publish(nc, f"log.{i}", f"m{i}".encode()))
        await pull_and_ack(nc, 5, 4)
        await pull_and_ack_nth(nc, 5, 4)
        await fetch_n(nc, "LN", 7)
        await empty_pull(nc, "LS")
        for name in ["LN", "LS"]:
            await empty_pull(nc, name)
        reset_info = None
        if "LR" in extra:
            for m in await fetch_n(nc, "LR", 7):
                await natsbox.ack(nc, m)
            reset_info = await reset(nc, "LR", 4)
            got = await fetch_n(nc, "LR", 2)
            await natsbox.ack(nc, got[0])
        second = {"stream": await stream(nc), "consumer": await consumer(nc),
                  "la": await consumer(nc, "LA"), "more": await consumers(nc, extra)}
        await nc.close()
        await asyncio.sleep(1.0)
    finally:
        for n in nodes:
            kill(n)
    dst = nodes[0].store / "jetstream/$G/streams/LOG"
    shutil.rmtree(dst)
    shutil.copytree(old, dst)
    return {
        "store": str(nodes[0].store),
        "peers": {n: peer_id(n) for n in NAMES},
        "before": first,
        "cluster": second,
        "reset": reset_info,
    }


class Helper(Node):
    """A server without JetStream in cluster C1: a route for n1 (the raft layer waits for
    one before it replays), no vote, no store."""

    def start(self, routes: list[int]):
        import subprocess

        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "server.conf"
        rs = ", ".join(f"nats://127.0.0.1:{p}" for p in routes)
        conf.write_text(
            f"server_name: {self.name}\nlisten: 127.0.0.1:{self.port}\n"
            f"cluster {{ name: C1, listen: 127.0.0.1:{self.cport}, routes: [{rs}] }}\n"
        )
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()


async def alone(binary: str, out: Path):
    n1 = Node(binary, out, "n1")
    h = Helper(binary, out, "helper")
    for n in (n1, h):
        n.port, n.cport, n.mport = natsbox.free_port(), natsbox.free_port(), natsbox.free_port()
    log_start = n1.log.stat().st_size if n1.log.exists() else 0
    h.start([n1.cport])
    n1.start([h.cport])
    try:
        deadline = time.monotonic() + 30
        while True:
            text = n1.log.read_bytes()[log_start:].decode(errors="replace")
            if "Route connection created" in text and "Server is ready" in text:
                break
            if "[FTL]" in text or time.monotonic() > deadline or n1.proc.poll() is not None:
                raise SystemExit(f"n1 did not start with a route:\n{text[-2000:]}")
            await asyncio.sleep(0.25)
        # the stream and consumer groups replay their logs once a route is up
        await asyncio.sleep(5.0)
    finally:
        n1.stop()
        h.stop()


async def all_nodes(binary: str, out: Path) -> dict:
    nodes = [Node(binary, out, n) for n in NAMES]
    start_all(nodes)
    try:
        nc = await connect(nodes[0])
        await retry(lambda: natsbox.js_api(nc, "$JS.API.INFO", timeout=2))
        s = await retry(lambda: stream(nc), 30)
        c = await retry(lambda: consumer(nc), 30)
        await nc.close()
        await asyncio.sleep(1.0)
    finally:
        for n in nodes:
            n.stop()
    return {"stream": s, "consumer": c}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--phase", choices=["setup", "alone", "all"], required=True)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.phase == "setup":
        facts = run_phase(out, lambda: asyncio.run(setup(a.server, out)))
        (out / "facts.json").write_text(json.dumps(facts, indent=1))
    elif a.phase == "alone":
        run_phase(out, lambda: asyncio.run(alone(a.server, out)))
    else:
        after = run_phase(out, lambda: asyncio.run(all_nodes(a.server, out)))
        (out / "after.json").write_text(json.dumps(after, indent=1))


if __name__ == "__main__":
    main()
