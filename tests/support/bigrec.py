"""A real stream of records near the file store's record limit, for tests/hostile.rs.

  python3 tests/support/bigrec.py --server BIN --out DIR [--mib 31] [--count 2] [--backups 1]

Starts BIN (nats-server 2.15.x) from a config with `max_payload` raised to 32 MiB (the
server warns above 8 MiB and keeps records up to `rlBadThresh` = 32 MiB), creates stream BIG
(subjects big.>), publishes COUNT messages of MIB MiB each (pseudo-random bytes that do
not compress, one header), writes its backup with the snapshot API (`nats stream backup`: V2
NATSARC1 for 2.15) to DIR/backup (and BACKUPS-1 more, taken the same way, to DIR/backup2,
DIR/backup3, ...), and stops the server: DIR/store is the stopped store.
Prints {"messages": N, "last_seq": S} as the server reported it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import natsbox as nb  # noqa: E402


def payload(i: int, size: int) -> bytes:
    # pseudo-random (does not compress: the backup is as large as the store), reproducible
    return random.Random(i).randbytes(size)


async def fill(url: str, out: Path, mib: int, count: int, backups: int) -> dict:
    nc = await nb.connect(url)
    try:
        await nb.wait_jetstream(nc)
        await nb.create_stream(nc, {"name": "BIG", "subjects": ["big.>"]})
        for i in range(count):
            await nb.publish(nc, f"big.{i}", payload(i, mib << 20), {"X-I": str(i)})
        info = await nb.stream_info(nc, "BIG")
        for k in range(backups):
            dest = out / ("backup" if k == 0 else f"backup{k + 1}")
            await nb.snapshot_stream(nc, "BIG", dest, chunk_size=1 << 20)
        st = info["state"]
        return {"messages": st["messages"], "last_seq": st["last_seq"]}
    finally:
        await nc.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mib", type=int, default=31)
    ap.add_argument("--count", type=int, default=2)
    ap.add_argument("--backups", type=int, default=1)
    a = ap.parse_args()
    out = Path(a.out)
    # max_payload is a top-level config option (no flag for it)
    srv = nb.NatsServer(
        a.server, out / "store", work_dir=out / "work", top_extra={"max_payload": 32 << 20}
    )
    srv.start()
    try:
        facts = asyncio.run(fill(srv.url, out, a.mib, a.count, a.backups))
    finally:
        srv.stop()
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
