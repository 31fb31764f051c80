"""Run a 3-node loopback nats-server cluster, make an R3 stream with placement and an R3
consumer with progress, record what the cluster says, and stop every node (SIGTERM), for
tests/rename_e2e.rs (rehome).

    cluster_rehome.py --server BIN --dir DIR --out OUT.json

DIR/n1, n2, n3: each node's store dir (`store/`) and log. OUT.json: {"version", "record"
(record_stream of CL as the cluster reports it), "logs"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import natsbox  # noqa: E402


def start(binary: str, base: Path, ports: list[int], cports: list[int]) -> list[subprocess.Popen]:
    procs = []
    for i in range(3):
        d = base / f"n{i + 1}"
        d.mkdir(parents=True, exist_ok=True)
        routes = ", ".join(f"nats://127.0.0.1:{p}" for j, p in enumerate(cports) if j != i)
        conf = d / "server.conf"
        conf.write_text(
            f"server_name: n{i + 1}\n"
            f"listen: 127.0.0.1:{ports[i]}\n"
            f"jetstream {{ store_dir: {json.dumps(str(d / 'store'))} }}\n"
            f"cluster {{ name: C1, listen: 127.0.0.1:{cports[i]}, routes: [{routes}] }}\n"
        )
        log = open(d / "server.log", "ab")
        procs.append(
            subprocess.Popen(
                [binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        )
        log.close()
    for i, p in enumerate(ports):
        deadline = time.monotonic() + 20
        while True:
            if procs[i].poll() is not None:
                raise RuntimeError(f"node n{i + 1} exited")
            try:
                with socket.create_connection(("127.0.0.1", p), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    return procs


async def until(fn, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            r = await fn()
            if r:
                return r
        except Exception as e:  # noqa: BLE001 - retry until the cluster is ready
            last = e
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{what}: {last}")


async def scenario(url: str) -> dict:
    nc = await natsbox.connect(url)
    try:
        await until(lambda: natsbox.js_api(nc, "$JS.API.INFO", timeout=2), "meta leader")
        cfg = {
            "name": "CL",
            "subjects": ["cl.>"],
            "num_replicas": 3,
            "placement": {"cluster": "C1"},
        }
        # placement waits for the peers' statsz (see cluster.py's PLACEMENT_WAIT)
        await until(lambda: natsbox.create_stream(nc, cfg), "stream create", 90.0)
        for i in range(20):
            await natsbox.publish(nc, f"cl.{i % 4}", f"x{i}".encode(),
                                  headers={"X-I": str(i)} if i % 5 == 0 else None)
        await natsbox.delete_msg(nc, "CL", 7, erase=False)
        await until(
            lambda: natsbox.create_consumer(
                nc, "CL",
                {"durable_name": "D", "ack_policy": "explicit", "ack_wait": 60_000_000_000,
                 "num_replicas": 3},
            ),
            "consumer create",
        )
        got = await natsbox.fetch(nc, "CL", "D", 6)
        for m in got[:4]:
            await natsbox.ack(nc, m)
        # let the replicas apply everything, then record what the cluster says
        await asyncio.sleep(1.0)
        return await natsbox.record_stream(nc, "CL")
    finally:
        await nc.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    base = Path(a.dir)
    ports = [natsbox.free_port() for _ in range(3)]
    cports = [natsbox.free_port() for _ in range(3)]
    procs = start(a.server, base, ports, cports)
    try:
        rec = asyncio.run(scenario(f"nats://127.0.0.1:{ports[0]}"))
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
    logs = {}
    for i in range(3):
        try:
            logs[f"n{i + 1}"] = (base / f"n{i + 1}" / "server.log").read_text(errors="replace")
        except OSError:
            logs[f"n{i + 1}"] = ""
    Path(a.out).write_text(
        json.dumps({"version": natsbox.server_version(a.server), "record": rec, "logs": logs},
                   indent=1)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
