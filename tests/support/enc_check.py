#!/usr/bin/env python3
"""Encrypted stores with a real nats-server (tests/encrypted_e2e.rs).

BIN is a nats-server binary or a release (2.12.8, found as natsbox.find_release does;
exit code 4 when it is missing).

  enc_check.py build --server BIN --out DIR --cipher chacha|aes --streams SECRET,ENCCMP
      Start BIN with `jetstream { key, cipher }` on DIR/store, run the recipes, record every
      stream (STREAM.INFO, CONSUMER.INFO, messages), stop (SIGTERM); write DIR/facts.json.
  enc_check.py plainblock --server BIN --out DIR --cipher chacha|aes
      The plaintext block of nats-server 2.10.0-2.11.5: stream E (subjects e.>, max_bytes
      120000: ~31 KB blocks) and consumer C created, the server stopped and started again
      (E is empty at that start), 100 messages of ~750 bytes published, seq 3 deleted,
      stopped; DIR/facts.json as for build. A release with the bug writes E's first block
      unencrypted.
  enc_check.py load --server BIN --store DIR --cipher chacha|aes --out OUT.json
                    [--key KEY --prev-key OLD]
      Start BIN with the key on an existing store (e.g. what `jetdir extract` wrote), record
      every stream it loaded, stop; OUT.json also lists the files after the stop and the
      log, so a test can see that the server encrypted plaintext files at start.

The key is the fixtures' (`jetdir-sample-key-0123456789abcdef`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import natsbox as nb  # noqa: E402
import recipes  # noqa: E402

KEY = "jetdir-sample-key-0123456789abcdef"


async def session(url: str, work) -> object:
    """Connect to the server at `url`, wait for JetStream, run `work(nc)`, close."""
    nc = await nb.connect(url)
    try:
        await nb.wait_jetstream(nc)
        return await work(nc)
    finally:
        await nc.close()


async def record_streams(nc) -> dict:
    return {n: await nb.record_stream(nc, n) for n in await nb.stream_names(nc)}


async def build(nc, streams: list[str]) -> dict:
    for s in streams:
        await recipes.RECIPES[s](nc)
    return await record_streams(nc)


async def plainblock_create(nc) -> None:
    await nb.create_stream(nc, {"name": "E", "subjects": ["e.>"], "max_bytes": 120000})
    await nb.create_consumer(nc, "E", {"durable_name": "C", "ack_policy": "explicit",
                                       "deliver_policy": "all"})


async def plainblock_fill(nc) -> dict:
    for i in range(100):
        await nb.publish(nc, f"e.{i % 3}", (f"message {i} payload " * 40).encode())
    await nb.delete_msg(nc, "E", 3, False)
    return {"E": await nb.record_stream(nc, "E")}


def run_server(binary: str, store: Path, extra, work_dir: Path, work) -> tuple[object, int]:
    """Start `binary` on `store`, run `work(nc)` in a session, stop it (SIGTERM): the
    result and the exit code (the log tail on stderr when the work fails)."""
    srv = nb.NatsServer(binary, store, jetstream_extra=extra, work_dir=work_dir)
    srv.start()
    try:
        res = asyncio.run(session(srv.url, work))
    except BaseException:
        srv.stop()
        print(srv.log_tail(), file=sys.stderr)
        raise
    return res, srv.stop()


def write_facts(out: Path, binary: str, cipher: str, rc: int, streams: dict) -> None:
    facts = {"version": nb.server_version(binary), "cipher": cipher, "exit_code": rc,
             "streams": streams}
    (out / "facts.json").write_text(json.dumps(facts, indent=1) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["build", "load", "plainblock"])
    ap.add_argument("--server", required=True)
    ap.add_argument("--cipher", required=True, choices=["chacha", "aes"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--store")
    ap.add_argument("--streams", default="SECRET")
    ap.add_argument("--key", default=KEY, help="the server's key (load; '' = no key)")
    ap.add_argument("--prev-key", help="the server's prev_key (load: key rotation)")
    a = ap.parse_args()
    if not Path(a.server).is_file():  # a release: "2.12.8"
        b = nb.find_release(a.server)
        if not b:
            print(f"missing: nats-server {a.server} (find_release in natsbox.py)", file=sys.stderr)
            return 4
        a.server = b
    extra = {"key": a.key, "cipher": a.cipher}
    if a.prev_key:
        extra["prev_key"] = a.prev_key
    if not a.key:  # `--key ''`: a server without a key (plaintext store)
        extra = None
    if a.mode == "build":
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        streams, rc = run_server(a.server, out / "store", extra, out / "work",
                                 lambda nc: build(nc, a.streams.split(",")))
        write_facts(out, a.server, a.cipher, rc, streams)
        return 0
    if a.mode == "plainblock":
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        run_server(a.server, out / "store", extra, out / "w1", plainblock_create)
        streams, rc = run_server(a.server, out / "store", extra, out / "w2", plainblock_fill)
        write_facts(out, a.server, a.cipher, rc, streams)
        return 0
    store = Path(a.store)
    work = tempfile.mkdtemp(prefix="enc-check-")
    srv = nb.NatsServer(a.server, store, jetstream_extra=extra, work_dir=Path(work) / "x")
    srv.start()
    try:
        streams = asyncio.run(session(srv.url, record_streams))
    finally:
        srv.stop()
    try:
        log = srv.log_path.read_text(errors="replace").splitlines()
    except OSError:
        log = []
    shutil.rmtree(work, ignore_errors=True)
    files = sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file())
    res = {"version": nb.server_version(a.server), "streams": streams, "files_after_stop": files,
           "log": log}
    Path(a.out).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
