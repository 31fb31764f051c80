#!/usr/bin/env python3
"""Build a stream of messages as large as a file store record gets (tests/hostile.rs).

  big_records.py --server BIN --store DIR [--mib 31] [--count 2] [--key KEY --cipher chacha]

Starts BIN with `max_payload` raised to 32 MiB (the server warns above 8 MiB but takes it) on
DIR, creates stream BIG (subjects `big.>`, one replica, file storage), publishes COUNT messages
of MIB MiB (4 KiB of pseudo-random bytes, repeated), adds a durable consumer C1 that acked the
first one, and stops the server with SIGTERM (index.db and o.dat flushed). With --key the
store is encrypted at rest (`jetstream { key, cipher }`). Prints the stream info as JSON.
"""
import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import natsbox as nb  # noqa: E402


def start(binary: str, store: Path, key: str | None, cipher: str) -> tuple[subprocess.Popen, int, Path]:
    store.mkdir(parents=True, exist_ok=True)
    port = nb.free_port()
    js = [f"  store_dir: {json.dumps(str(store))}"]
    if key:
        js.append(f"  key: {json.dumps(key)}")
        js.append(f"  cipher: {json.dumps(cipher)}")
    conf = store.parent / f"{store.name}.conf"
    conf.write_text(
        f"listen: 127.0.0.1:{port}\nmax_payload: 33554432\njetstream {{\n"
        + "\n".join(js)
        + "\n}\n"
    )
    log = store.parent / f"{store.name}.log"
    with open(log, "ab") as lf:
        p = subprocess.Popen([binary, "-c", str(conf)], stdout=lf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"nats-server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return p, port, log
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise RuntimeError("nats-server did not listen")


async def fill(port: int, mib: int, count: int) -> dict:
    import nats

    nc = await nats.connect(f"nats://127.0.0.1:{port}", connect_timeout=5,
                            max_reconnect_attempts=0)
    try:
        await nb.wait_jetstream(nc)
        await nb.create_stream(nc, {"name": "BIG", "subjects": ["big.>"],
                                    "max_msg_size": 33554432})
        rng = random.Random(7)
        for i in range(count):
            # 4 KiB of random bytes repeated: blocks as big as with any payload, but gzip and
            # S2 get through it fast (the debug build runs these tests)
            data = rng.randbytes(4096) * (mib << 8)
            msg = await nc.request(f"big.{i}", data, timeout=60)
            ack = json.loads(msg.data)
            if ack.get("error"):
                raise RuntimeError(f"publish {i}: {ack['error']}")
        await nb.create_consumer(nc, "BIG", {"durable_name": "C1", "ack_policy": "explicit",
                                             "deliver_policy": "all"})
        msgs = await nb.fetch(nc, "BIG", "C1", 1, timeout=10)
        for m in msgs:
            await nb.ack(nc, m)
        await asyncio.sleep(0.2)
        return await nb.stream_info(nc, "BIG")
    finally:
        await nc.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--mib", type=int, default=31)
    ap.add_argument("--count", type=int, default=2)
    ap.add_argument("--key")
    ap.add_argument("--cipher", default="chacha", choices=["chacha", "aes"])
    a = ap.parse_args()
    store = Path(a.store)
    p, port, log = start(a.server, store, a.key, a.cipher)
    try:
        info = asyncio.run(fill(port, a.mib, a.count))
    finally:
        if p.poll() is None:
            os.kill(p.pid, 15)
            p.wait(timeout=60)
    print(json.dumps(info.get("state", {})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
