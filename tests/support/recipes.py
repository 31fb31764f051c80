"""The stream recipes of fixtures/samples/README.md, as code.

Each recipe is `async def recipe(nc) -> list[dict]` (the ops log) and builds
one stream on a running server. Used by fixtures/make_fixtures.py and by
tests/support/scenario.py.
"""

from __future__ import annotations

import natsbox as nb


def lorem(prefix: str, i: int, size: int = 1000) -> bytes:
    return ((f"{prefix} message {i:04d} ") + "lorem ipsum dolor sit amet " * (size // 20 + 2))[
        :size
    ].encode()


async def orders(nc) -> list[dict]:
    ops: list[dict] = []
    await nb.create_stream(nc, {"name": "ORDERS", "subjects": ["orders.>"]})
    subjects = ["orders.new", "orders.paid", "orders.shipped"]
    for i in range(1, 11):
        hdrs = None
        if i in (2, 5, 8):
            hdrs = {"X-Order": str(i)}
        if i == 9:
            hdrs = {"Nats-Msg-Id": "order-9", "X-Order": "9"}
        subj = subjects[(i - 1) % 3]
        a = await nb.publish(nc, subj, f"order {i} payload".encode(), hdrs)
        ops.append({"op": "pub", "subject": subj, "headers": hdrs, "ack": a})
    ops.append({"op": "delete seq 3 no_erase", "resp": await nb.delete_msg(nc, "ORDERS", 3, False)})
    ops.append({"op": "delete seq 6 erase", "resp": await nb.delete_msg(nc, "ORDERS", 6, True)})
    await nb.create_consumer(
        nc,
        "ORDERS",
        {
            "durable_name": "C1",
            "ack_policy": "explicit",
            "ack_wait": 60_000_000_000,
            "max_deliver": -1,
            "deliver_policy": "all",
        },
    )
    msgs = await nb.fetch(nc, "ORDERS", "C1", 4)
    ops.append({"op": "C1 fetch 4", "stream_seqs": [nb.ack_meta(m)["stream_seq"] for m in msgs]})
    for m in msgs:
        seq = nb.ack_meta(m)["stream_seq"]
        await nb.ack(nc, m, b"-NAK" if seq == 4 else b"+ACK")
    again = await nb.fetch(nc, "ORDERS", "C1", 1)
    ops.append(
        {
            "op": "C1 acked 1,2,5; nak 4; fetch 1 again (not acked)",
            "stream_seqs": [nb.ack_meta(m)["stream_seq"] for m in again],
        }
    )
    await nb.create_consumer(
        nc, "ORDERS", {"durable_name": "C2", "ack_policy": "none", "deliver_policy": "all"}
    )
    msgs = await nb.fetch(nc, "ORDERS", "C2", 3)
    ops.append(
        {"op": "C2 fetch 3 (ack none)", "stream_seqs": [nb.ack_meta(m)["stream_seq"] for m in msgs]}
    )
    return ops


async def purged(nc) -> list[dict]:
    ops: list[dict] = []
    await nb.create_stream(nc, {"name": "PURGED", "subjects": ["purged.>"]})
    for i in range(1, 6):
        await nb.publish(nc, f"purged.{i}", f"purged {i}".encode())
    ops.append({"op": "publish purged.1..5"})
    ops.append({"op": "purge", "resp": await nb.purge(nc, "PURGED")})
    for i in (6, 7):
        await nb.publish(nc, f"purged.{i}", f"after purge {i}".encode())
    ops.append({"op": "publish purged.6, purged.7"})
    return ops


async def multi_like(nc, name: str, prefix: str, count: int, compression: str = "none") -> list:
    """MULTI / CMP / ENCMULTI: `count` 1000-byte messages in 32000-byte blocks."""
    ops: list[dict] = []
    cfg = {"name": name, "subjects": [f"{prefix}.>"], "max_bytes": 120000}
    if compression != "none":
        cfg["compression"] = compression
    await nb.create_stream(nc, cfg)
    for i in range(1, count + 1):
        hdrs = {"X-Seq": str(i)} if i % 10 == 0 else None
        await nb.publish(nc, f"{prefix}.{i % 5}", lorem(name, i), hdrs)
    ops.append({"op": f"publish {count} x 1000 bytes on {prefix}.<i mod 5>, X-Seq every 10th"})
    for seq in (10, 40):
        ops.append(
            {"op": f"delete seq {seq} no_erase", "resp": await nb.delete_msg(nc, name, seq, False)}
        )
    return ops


async def multi(nc) -> list[dict]:
    return await multi_like(nc, "MULTI", "multi", 100)


async def cmp_s2(nc) -> list[dict]:
    return await multi_like(nc, "CMP", "cmp", 100, compression="s2")


async def enc_cmp(nc) -> list[dict]:
    return await multi_like(nc, "ENCCMP", "encc", 60, compression="s2")


async def kv_config(nc) -> list[dict]:
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="config", history=3)
    ops: list[dict] = []
    for k, v in (("a", "1"), ("b", "2"), ("a", "3"), ("c", "x"), ("c", "y")):
        rev = await kv.put(k, v.encode())
        ops.append({"op": f"put {k}={v}", "rev": rev})
    await kv.delete("b")
    ops.append({"op": "delete b"})
    await kv.purge("c")
    ops.append({"op": "purge c"})
    return ops


async def empty(nc) -> list[dict]:
    await nb.create_stream(nc, {"name": "EMPTY", "subjects": ["empty.>"]})
    return [{"op": "create, publish nothing"}]


async def secret(nc) -> list[dict]:
    ops: list[dict] = []
    await nb.create_stream(nc, {"name": "SECRET", "subjects": ["secret.>"]})
    for i in range(1, 11):
        hdrs = {"X-I": str(i)} if i % 3 == 0 else None
        await nb.publish(nc, f"secret.{i % 2}", f"secret payload {i}".encode(), hdrs)
    ops.append({"op": "publish 10 on secret.<i mod 2>, X-I on 3,6,9"})
    ops.append({"op": "delete seq 4 no_erase", "resp": await nb.delete_msg(nc, "SECRET", 4, False)})
    await nb.create_consumer(
        nc,
        "SECRET",
        {
            "durable_name": "D1",
            "ack_policy": "explicit",
            "ack_wait": 60_000_000_000,
            "max_deliver": -1,
            "deliver_policy": "all",
        },
    )
    msgs = await nb.fetch(nc, "SECRET", "D1", 3)
    for m in msgs[:2]:
        await nb.ack(nc, m)
    ops.append(
        {"op": "D1 fetch 3, ack first 2", "stream_seqs": [nb.ack_meta(m)["stream_seq"] for m in msgs]}
    )
    return ops


RECIPES = {
    "ORDERS": orders,
    "PURGED": purged,
    "MULTI": multi,
    "KV_config": kv_config,
    "EMPTY": empty,
    "CMP": cmp_s2,
    "SECRET": secret,
    "ENCCMP": enc_cmp,
}
