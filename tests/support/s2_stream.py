"""A stream of S2-compressed blocks with full 8 MiB blocks, written by a real nats-server.

Usage: s2_stream.py --server BIN --store DIR [--count N]

Stream S2S (`compression: s2`), N (default 100000) messages of 1100 bytes on 100 subjects
(each block decodes to the server's 8 MiB), stopped with SIGTERM. Used by tests/hostile.rs:
dump and diff of such blocks stay under the memory bound.
"""
import argparse
import asyncio
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import natsbox as nb  # noqa: E402


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--count", type=int, default=100_000)
    a = ap.parse_args()
    out = Path(a.store)
    shutil.rmtree(out, ignore_errors=True)
    with nb.NatsServer(a.server, out) as s:
        nc = await nb.connect(s.url)
        await nb.wait_jetstream(nc)
        await nb.create_stream(nc, {"name": "S2S", "subjects": ["s.>"], "storage": "file",
                                    "compression": "s2"})
        js = nc.jetstream()
        pay = bytes(range(256)) * 2 + b"x" * 588
        futs = []
        for i in range(a.count):
            futs.append(js.publish(f"s.{i % 100}", pay))
            if len(futs) >= 2000:
                await asyncio.gather(*futs)
                futs = []
        await asyncio.gather(*futs)
        await nc.close()


asyncio.run(main())
