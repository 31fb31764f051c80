"""Real-server facts for `jetdir dump`, `jetdir kv` and `jetdir object` (tests/forensics_e2e.rs).

  python3 tests/support/forensics_scenario.py --server BIN --out DIR
  python3 tests/support/forensics_scenario.py --server BIN --out DIR --read STORE [--stream S]

Starts BIN on 127.0.0.1 with store dir DIR/store and, with nats-py:
- stream EV (subjects ev.>): messages with and without headers a binary
  payload, a deleted and an erased message; every live message read back by
  STREAM.MSG.GET (subject, headers parsed into a map of arrays, payload, time);
- stream AGE (max_age 1 h, three messages);
- KV bucket `cfg` (history 5): puts, a delete, a purge, a binary value, a key put again
  after its delete; what the client's get / keys / history return;
- object bucket `files`: a 300000-byte object (3 chunks of 128 KiB), a small one, one
  deleted and one put twice; what the client's list / get return (bytes as SHA-256 hex,
  also the bytes of the big one in DIR/big.bin).
Then stops the server (SIGTERM) and writes DIR/facts.json. With --read, it only starts BIN on
an existing STORE (a damaged copy) and writes what STREAM.MSG.GET serves to DIR/served.json.

--key KEY [--cipher chacha|aes]: the server encrypts its store (`jetstream { key, cipher }`);
--account ACC: everything is made (or read) in account ACC (a config with `accounts { ACC:
{ jetstream: enabled, users: [{user: acc, password: pw}] } }`), not $G
(tests/encrypted_account_e2e.rs).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import natsbox as nb  # noqa: E402


def parse_hdrs(raw: bytes) -> dict:
    out: dict[str, list[str]] = {}
    if not raw:
        return out
    for line in raw.decode().split("\r\n")[1:]:
        if ":" not in line:
            continue
        k, v = line.split(":", 1)
        out.setdefault(k.strip(), []).append(v.strip())
    return out


async def get_all(nc, stream: str) -> list[dict]:
    info = await nb.stream_info(nc, stream)
    st = info["state"]
    out = []
    for seq in range(st["first_seq"], st["last_seq"] + 1) if st["messages"] else []:
        try:
            r = await nb.js_api(nc, f"$JS.API.STREAM.MSG.GET.{stream}", {"seq": seq})
        except nb.JsApiError as e:
            if e.error.get("code") == 404:
                continue
            raise
        m = r["message"]
        out.append({
            "seq": m["seq"],
            "subject": m["subject"],
            "time": m["time"],
            "headers": parse_hdrs(base64.b64decode(m.get("hdrs") or "")),
            "data_b64": m.get("data") or "",
        })
    return out


async def settled(read):
    """nats-py's KV watchers (keys, history) may end before the server has sent every entry
    when the machine is loaded (an empty answer raises NoKeysError): read until two answers
    in a row agree."""
    from nats.js.errors import NoKeysError

    last = None
    for _ in range(20):
        try:
            got = await read()
        except NoKeysError:
            got = None
        key = None if got is None else [getattr(e, "revision", e) for e in got]
        if got is not None and last == key:
            return got
        last = key
        await asyncio.sleep(0.25)
    raise RuntimeError("KV read did not settle")


async def run(url: str, out: Path) -> dict:
    import nats
    from nats.js.errors import KeyNotFoundError, NotFoundError, KeyDeletedError

    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
    js = nc.jetstream()
    facts: dict = {}
    try:
        await nb.wait_jetstream(nc)
        # --- a plain stream
        await nb.create_stream(nc, {"name": "EV", "subjects": ["ev.>"]})
        for i in range(1, 41):
            hdrs = {"X-I": str(i), "X-Kind": "even" if i % 2 == 0 else "odd"} if i % 3 else None
            await nb.publish(nc, f"ev.{'a' if i % 2 else 'b'}.{i % 5}", f"event {i}".encode(), hdrs)
        # a binary payload with a header
        hdr_msg = await nc.request("ev.bin", bytes(range(256)), timeout=5, headers={"X-Bin": "yes"})
        assert json.loads(hdr_msg.data).get("seq")
        await nb.delete_msg(nc, "EV", 5, erase=False)
        await nb.delete_msg(nc, "EV", 8, erase=True)
        facts["ev"] = await get_all(nc, "EV")
        # a stream with max_age 1h: served now, gone for a server started 2 h later
        await nb.create_stream(nc, {"name": "AGE", "subjects": ["age.>"], "max_age": 3600 * 10**9})
        for i in range(3):
            await nb.publish(nc, f"age.{i}", b"young")
        facts["age"] = await get_all(nc, "AGE")

        # --- KV
        kv = await js.create_key_value(bucket="cfg", history=5)
        await kv.put("a", b"1")
        await kv.put("b", b"x")
        await kv.put("a", b"2")
        await kv.put("c", b"y")
        await kv.delete("b")
        await kv.put("a", b"3")
        await kv.purge("c")
        await kv.put("d", bytes([0, 159, 146, 150, 255]))
        await kv.put("e", b"old")
        await kv.delete("e")
        await kv.put("e", b"new")
        await kv.put("dotted.key/x=1", b"dots")
        got = {}
        for k in ["a", "b", "c", "d", "e", "dotted.key/x=1", "never"]:
            try:
                e = await kv.get(k)
                got[k] = {"value_b64": base64.b64encode(e.value or b"").decode(), "revision": e.revision}
            except (KeyNotFoundError, KeyDeletedError):
                got[k] = None
        facts["kv_get"] = got
        facts["kv_keys"] = sorted(await settled(kv.keys))
        hist = await settled(lambda: kv.history("a"))
        facts["kv_history_a"] = [
            {"revision": e.revision, "op": e.operation or "PUT", "value_b64": base64.b64encode(e.value or b"").decode()}
            for e in hist
        ]
        hist = await settled(lambda: kv.history("e"))
        facts["kv_history_e"] = [
            {"revision": e.revision, "op": e.operation or "PUT", "value_b64": base64.b64encode(e.value or b"").decode()}
            for e in hist
        ]

        # --- object store
        obs = await js.create_object_store(bucket="files")
        big = os.urandom(300_000)
        (out / "big.bin").write_bytes(big)
        await obs.put("big.bin", big)
        await obs.put("small.txt", b"hello objects\n")
        await obs.put("gone.txt", b"to be deleted")
        await obs.delete("gone.txt")
        await obs.put("twice.txt", b"first version")
        await obs.put("twice.txt", b"second version, longer")
        infos = await obs.list()
        facts["obj_list"] = sorted(
            [{"name": i.name, "size": i.size, "chunks": i.chunks, "digest": i.digest}
             for i in infos if not i.deleted],
            key=lambda x: x["name"],
        )
        objs = {}
        for name in ["big.bin", "small.txt", "twice.txt", "gone.txt"]:
            try:
                r = await obs.get(name)
                objs[name] = hashlib.sha256(r.data).hexdigest()
            except (NotFoundError, Exception) as e:  # noqa: BLE001 - deleted object
                objs[name] = None if "not found" in str(e).lower() or isinstance(e, NotFoundError) else repr(e)
        facts["obj_get"] = objs
    finally:
        await nc.close()
    return facts


async def read_back(url: str, stream: str) -> list[dict]:
    nc = await nb.connect(url)
    try:
        await nb.wait_jetstream(nc)
        return await get_all(nc, stream)
    finally:
        await nc.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--read", metavar="STORE", help="only start BIN on STORE and write what "
                    "STREAM.MSG.GET serves for --stream to OUT/served.json")
    ap.add_argument("--stream", default="EV")
    ap.add_argument("--key", help="the server's JetStream key (an encrypted store)")
    ap.add_argument("--cipher", default="chacha", choices=["chacha", "aes"])
    ap.add_argument("--account", help="an account of the config (not $G) to work in")
    a = ap.parse_args()
    out = Path(a.out)
    js_extra = {"key": a.key, "cipher": a.cipher} if a.key else None
    top_extra = None
    if a.account:
        user = {"user": a.account.lower(), "password": "pw"}
        top_extra = {"accounts": {a.account: {"jetstream": "enabled", "users": [user]}}}

    def server(store):
        return nb.NatsServer(a.server, store, work_dir=out, jetstream_extra=js_extra,
                             top_extra=top_extra)

    def url(srv):
        if not a.account:
            return srv.url
        return f"nats://{a.account.lower()}:pw@127.0.0.1:{srv.port}"

    if a.read:
        out.mkdir(parents=True, exist_ok=True)
        srv = server(a.read)
        srv.start()
        try:
            served = asyncio.run(read_back(url(srv), a.stream))
        except BaseException:
            srv.stop()
            print(srv.log_tail(), file=sys.stderr)
            raise
        srv.stop()
        (out / "served.json").write_text(json.dumps(served, indent=1) + "\n")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    srv = server(out / "store")
    srv.start()
    try:
        facts = asyncio.run(run(url(srv), out))
    except BaseException:
        srv.stop()
        print(srv.log_tail(), file=sys.stderr)
        raise
    facts["exit_code"] = srv.stop()
    facts["version"] = nb.server_version(a.server)
    (out / "facts.json").write_text(json.dumps(facts, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
