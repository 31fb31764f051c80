#!/usr/bin/env python3
"""Build a one-stream store with a real nats-server, or load one and say what the server sees.

  python3 tests/support/config_load.py build --server BIN --store DIR
  python3 tests/support/config_load.py load  --server BIN --store DIR

`build` starts BIN on 127.0.0.1 (free port) with store dir DIR, creates stream ORDERS
(subjects orders.>) with 5 messages and a durable pull consumer C1, and stops the server with
SIGTERM to its PID. `load` starts BIN on DIR (which the caller may have edited), and prints one
JSON document on stdout:

  {"version": "2.15.1",
   "names": [...],                 # $JS.API.STREAM.NAMES
   "list_offline": {...},          # the "offline" map of $JS.API.STREAM.LIST (2.11.9+), or {}
   "info": {...} | null,           # $JS.API.STREAM.INFO.ORDERS when it answers without error
   "info_error": {...} | null,     # its error otherwise
   "consumers": [...] | null,      # $JS.API.CONSUMER.NAMES.ORDERS (null on error)
   "log": "..."}                   # the server's log

then stops the server. Exit code 0 on success; 3 when nats-py is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

try:
    import nats  # noqa: F401
except ImportError:
    print("nats-py is not installed", file=sys.stderr)
    sys.exit(3)

import natsbox  # noqa: E402


async def build(url: str) -> None:
    nc = await natsbox.connect(url)
    try:
        await natsbox.wait_jetstream(nc)
        await natsbox.create_stream(nc, {"name": "ORDERS", "subjects": ["orders.>"]})
        for i in range(5):
            await natsbox.publish(nc, f"orders.{i}", f"order {i}".encode())
        await natsbox.create_consumer(
            nc, "ORDERS", {"durable_name": "C1", "ack_policy": "explicit"}
        )
    finally:
        await nc.close()


async def load(url: str) -> dict:
    nc = await natsbox.connect(url)
    out: dict = {}
    try:
        await natsbox.wait_jetstream(nc)
        out["names"] = await natsbox.stream_names(nc)
        lst = await natsbox.js_api(nc, "$JS.API.STREAM.LIST", {})
        out["list_offline"] = lst.get("offline") or {}
        try:
            out["info"] = await natsbox.stream_info(nc, "ORDERS")
            out["info_error"] = None
        except natsbox.JsApiError as e:
            out["info"], out["info_error"] = None, e.error
        try:
            out["consumers"] = await natsbox.consumer_names(nc, "ORDERS")
        except natsbox.JsApiError:
            out["consumers"] = None
    finally:
        await nc.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["build", "load"])
    ap.add_argument("--server", required=True)
    ap.add_argument("--store", required=True)
    a = ap.parse_args()
    srv = natsbox.NatsServer(a.server, a.store)
    srv.start()
    try:
        if a.what == "build":
            asyncio.run(build(srv.url))
            result = None
        else:
            result = asyncio.run(load(srv.url))
    finally:
        srv.stop()
    if result is not None:
        result["version"] = natsbox.server_version(a.server)
        result["log"] = srv.log_path.read_text(errors="replace")
        json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
