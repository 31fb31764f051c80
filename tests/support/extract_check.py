"""Start a real nats-server on a store dir that `jetdir extract` wrote, record what it
loaded, and (optionally) restore the same backup through the server's restore API into a
fresh server for comparison. Used by tests/extract_e2e.rs.

    extract_check.py --server BIN --store DIR --stream NAME [--restore BACKUP_DIR] --out OUT.json

OUT.json: {"version", "extracted": {"names", "record"?, "log", "files_after_stop"},
           "restored"?: {"names", "record", "log"}}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import natsbox  # noqa: E402


async def record(url: str, stream: str) -> dict:
    nc = await natsbox.connect(url)
    try:
        await natsbox.wait_jetstream(nc)
        names = await natsbox.stream_names(nc)
        out: dict = {"names": names}
        if stream in names:
            out["record"] = await natsbox.record_stream(nc, stream)
        return out
    finally:
        await nc.close()


async def restore(url: str, backup: str, stream: str) -> dict:
    nc = await natsbox.connect(url)
    try:
        await natsbox.wait_jetstream(nc)
        await natsbox.restore_stream(nc, backup)
    finally:
        await nc.close()
    return await record(url, stream)


def files_under(p: Path) -> list[str]:
    if not p.exists():
        return []
    return sorted(str(f.relative_to(p)) for f in p.rglob("*"))


def log_lines(srv: natsbox.NatsServer) -> list[str]:
    try:
        return srv.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--stream", required=True)
    ap.add_argument("--restore")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    result: dict = {"version": natsbox.server_version(a.server)}
    work = tempfile.mkdtemp(prefix="extract-check-")
    srv = natsbox.NatsServer(a.server, a.store, work_dir=os.path.join(work, "x"))
    srv.start()
    try:
        ext = asyncio.run(record(srv.url, a.stream))
    finally:
        srv.stop()
    ext["log"] = log_lines(srv)
    sdir = Path(a.store) / "jetstream" / "$G" / "streams"
    ext["files_after_stop"] = files_under(sdir)
    result["extracted"] = ext

    if a.restore:
        store2 = os.path.join(work, "restore-store")
        srv2 = natsbox.NatsServer(a.server, store2, work_dir=os.path.join(work, "r"))
        srv2.start()
        try:
            res = asyncio.run(restore(srv2.url, a.restore, a.stream))
        finally:
            srv2.stop()
        res["log"] = log_lines(srv2)
        result["restored"] = res

    shutil.rmtree(work, ignore_errors=True)
    Path(a.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
