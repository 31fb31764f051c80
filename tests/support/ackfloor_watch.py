"""Watch a consumer's ack floor after a restart, for minutes (the periodic ack-floor check of
2.11+, `checkAckFloor` every 1 to 2 minutes; issue #9). Not run by the suite: it takes minutes.

Usage: ackfloor_watch.py SERVER OUTDIR SECONDS

Stream AF (no limits), durable explicit-ack consumer C: 200 messages, 16 fetched and acked, 4
more fetched and left pending, then max_msgs 100 (first seq 101; the server terminates the 4
pending at once), SIGTERM. Restarted on the same store, CONSUMER.INFO is printed at start and
whenever it changes for SECONDS. Seen on 2026-11-30: 2.10.26 moves the ack floor from 20 to
100 at start; 2.11.11 and 2.12.8 (190 s) and 2.15.1 (150 s) keep 20 throughout.
"""
import asyncio, json, sys, time, shutil
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import natsbox as nb
async def main(binary, out, wait):
    out = Path(out); shutil.rmtree(out, ignore_errors=True); out.mkdir()
    with nb.NatsServer(binary, out / "store") as s:
        nc = await nb.connect(s.url); await nb.wait_jetstream(nc)
        cfg = {"name": "AF", "subjects": ["af.>"], "storage": "file"}
        await nb.create_stream(nc, cfg)
        await nb.create_consumer(nc, "AF", {"durable_name": "C", "ack_policy": "explicit"})
        for i in range(200):
            await nb.publish(nc, f"af.{i%5}", b"x")
        msgs = await nb.fetch(nc, "AF", "C", 16)
        for m in msgs: await nb.ack(nc, m)
        await nb.fetch(nc, "AF", "C", 4)   # 17..20 pending
        await asyncio.sleep(0.5)
        await nb.js_api(nc, "$JS.API.STREAM.UPDATE.AF", {**cfg, "max_msgs": 100})
        print("before stop", json.dumps({k: v for k, v in (await nb.consumer_info(nc, "AF", "C")).items() if k in ("delivered","ack_floor","num_ack_pending","num_pending")}))
        await nc.close()
    with nb.NatsServer(binary, out / "store") as s:
        nc = await nb.connect(s.url); await nb.wait_jetstream(nc)
        t0 = time.time()
        last = None
        while time.time() - t0 < wait:
            ci = await nb.consumer_info(nc, "AF", "C")
            cur = json.dumps({k: v for k, v in ci.items() if k in ("delivered","ack_floor","num_ack_pending")})
            if cur != last:
                print(f"t+{time.time()-t0:.1f}", cur, (await nb.stream_info(nc, "AF"))["state"]["first_seq"], flush=True)
                last = cur
            await asyncio.sleep(2)
        await nc.close()
asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
