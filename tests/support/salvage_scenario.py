"""Real-server facts for `jetdir diff` and `jetdir salvage` (tests/forensics2_e2e.rs).

  python3 tests/support/salvage_scenario.py --server BIN --out DIR lag
  python3 tests/support/salvage_scenario.py --server BIN --out DIR restore BACKUP_DIR

`lag`: a replica that fell behind. Starts BIN on DIR/store, creates stream R (subjects r.>)
with 30 messages and a durable pull consumer D that acknowledges the first 10, stops the
server and copies the store to DIR/lag (the lagging copy); starts the server again on
DIR/store, publishes 10 more and acknowledges 15 more, stops it. DIR/facts.json: what
STREAM.MSG.GET served for R at the end, and D's delivered / ack floor at each stop.

`restore`: starts BIN on an empty DIR/store, restores the backup dir BACKUP_DIR
(backup.json + stream.tar.s2) through the JetStream API as `nats stream restore` does, and
writes what STREAM.MSG.GET serves for the restored stream to DIR/served.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import natsbox as nb  # noqa: E402
from forensics_scenario import get_all  # noqa: E402


async def fill(url: str, first: int, last: int, acks: int) -> dict:
    nc = await nb.connect(url)
    try:
        await nb.wait_jetstream(nc)
        if first == 1:
            await nb.create_stream(nc, {"name": "R", "subjects": ["r.>"]})
            await nb.create_consumer(nc, "R", {"durable_name": "D", "ack_policy": "explicit"})
        for i in range(first, last + 1):
            await nb.publish(nc, f"r.{i % 3}", f"msg {i}".encode(), {"X-I": str(i)} if i % 2 else None)
        got = await nb.fetch(nc, "R", "D", acks)
        for m in got:
            await nb.ack(nc, m)
        ci = await nb.consumer_info(nc, "R", "D")
        return {
            "delivered": ci["delivered"]["stream_seq"],
            "ack_floor": ci["ack_floor"]["stream_seq"],
            "messages": await get_all(nc, "R"),
        }
    finally:
        await nc.close()


async def restore(url: str, backup: Path) -> list[dict]:
    nc = await nb.connect(url)
    try:
        await nb.wait_jetstream(nc)
        await nb.restore_stream(nc, backup)
        name = json.loads((backup / "backup.json").read_text())["config"]["name"]
        return await get_all(nc, name)
    finally:
        await nc.close()


def run_server(binary: str, store: Path, work: Path, fn):
    srv = nb.NatsServer(binary, store, work_dir=work)
    srv.start()
    try:
        return asyncio.run(fn(srv.url))
    except BaseException:
        srv.stop()
        print(srv.log_tail(), file=sys.stderr)
        raise
    finally:
        srv.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("mode", choices=["lag", "restore"])
    ap.add_argument("backup", nargs="?")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "store"
    if a.mode == "restore":
        served = run_server(a.server, store, out, lambda url: restore(url, Path(a.backup)))
        (out / "served.json").write_text(json.dumps(served, indent=1) + "\n")
        return 0
    first = run_server(a.server, store, out, lambda url: fill(url, 1, 30, 10))
    shutil.copytree(store, out / "lag")
    second = run_server(a.server, store, out, lambda url: fill(url, 31, 40, 15))
    facts = {
        "lag": {"delivered": first["delivered"], "ack_floor": first["ack_floor"]},
        "ahead": {"delivered": second["delivered"], "ack_floor": second["ack_floor"]},
        "messages": second["messages"],
    }
    (out / "facts.json").write_text(json.dumps(facts, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
