#!/usr/bin/env python3
"""A compressed block damaged by the server's own erase (fixtures/m3-erased-cmp), loaded by
other releases: does jetdir say what each does?

  m3_check.py --fixture fixtures/m3-erased-cmp/v2.10.25/CMP --releases 2.14.4,2.14.5,2.15.1
              [--jetdir target/release/jetdir] [--out releases.json]

For each release (found as natsbox.find_release does; JETDIR_SERVERS overrides) and each of
"index kept" (the trusted index.db) and "index removed" (a rebuild): copy the stream dir into
a fresh store, run `jetdir verify --json --server-version R` on it, start the release on the
same files, record whether it loaded the stream, its state, which sequences STREAM.MSG.GET
serves and every consumer's num_pending, stop it (SIGTERM to its PID), and compare: loaded or
not (jetdir's verdict `skipped`), messages, first/last seq, deleted count, the sequences the
server does not serve against jetdir's lost and unreadable ones, subject counts and pending
counts. Exit 0 when every case agrees, 1 when one differs, 4 when a release is missing.
--out writes what each server did (the fixtures' `releases.json`, which
`erase_damaged_compressed_block_as_later_releases_load_it` checks jetdir against).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import natsbox as nb  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


async def record(url: str, stream: str) -> dict:
    nc = await nb.connect(url)
    try:
        await nb.wait_jetstream(nc)
        names = await nb.stream_names(nc)
        if stream not in names:
            return {"loaded": False}
        info = await nb.stream_info(nc, stream)
        st = info["state"]
        served = []
        for seq in range(st.get("first_seq", 0), st.get("last_seq", 0) + 1):
            try:
                r = await nb.js_api(nc, f"$JS.API.STREAM.MSG.GET.{stream}", {"seq": seq})
                served.append(r["message"]["seq"])
            except nb.JsApiError:
                pass
        pending = {}
        for c in await nb.consumer_names(nc, stream):
            pending[c] = (await nb.consumer_info(nc, stream, c)).get("num_pending")
        return {"loaded": True, "state": st, "served": served, "pending": pending}
    finally:
        await nc.close()


async def restore_and_record(url: str, backup: Path, stream: str) -> dict:
    nc = await nb.connect(url)
    try:
        await nb.wait_jetstream(nc)
        try:
            await nb.restore_stream(nc, backup)
        except nb.JsApiError as e:
            return {"loaded": False, "restore_error": str(e)}
    finally:
        await nc.close()
    return await record(url, stream)


def ranges(rs) -> set[int]:
    return {q for a, b in rs for q in range(a, b + 1)}


def compare(server: dict, jd: dict) -> list[str]:
    s = jd["streams"][0]
    load = s.get("load") or {}
    diffs = []
    skipped = load.get("verdict") == "skipped"
    if server["loaded"] == skipped:
        diffs.append(f"loaded: server {server['loaded']}, jetdir verdict {load.get('verdict')}")
    if not server["loaded"] or skipped:
        return diffs
    st = server["state"]
    for k, jk in (("messages", "messages"), ("first_seq", "first_seq"), ("last_seq", "last_seq"),
                  ("num_deleted", "deleted")):
        if st.get(k, 0) != (s.get(jk) or 0):
            diffs.append(f"{k}: server {st.get(k, 0)}, jetdir {s.get(jk)}")
    deleted = set(st.get("deleted") or [])
    unserved = {q for q in range(st["first_seq"], st["last_seq"] + 1)
                if q not in deleted and q not in set(server["served"])}
    gone = (ranges(load.get("unreadable") or []) | ranges(load.get("lost") or [])) - deleted
    if unserved != gone:
        diffs.append(f"not served: server {sorted(unserved)}, jetdir {sorted(gone)}")
    if (st.get("subjects") or {}) != (s.get("subject_counts") or {}):
        diffs.append(f"subjects: server {st.get('subjects')}, jetdir {s.get('subject_counts')}")
    for c in s.get("consumers") or []:
        want = server["pending"].get(c["name"])
        # (None: jetdir does not count a stream inside an archive, read once)
        if want is not None and c.get("num_pending") is not None and c["num_pending"] != want:
            diffs.append(f"{c['name']}.num_pending: server {want}, jetdir {c.get('num_pending')}")
    return diffs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--releases", required=True)
    # where cargo builds it (CARGO_TARGET_DIR, as scripts/matrix.sh's `cargo build` honours it)
    ap.add_argument("--jetdir", default=str(
        Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target").resolve() / "release" / "jetdir"))
    ap.add_argument("--out")
    ap.add_argument("--backup", help="a V1 backup of the fixture's stream: restore it instead")
    a = ap.parse_args()
    fixture = Path(a.fixture)
    stream = fixture.name
    if a.backup:
        return check_backup(Path(a.backup), stream, a.releases.split(","), a.jetdir)
    facts, bad = [], 0
    for rel in a.releases.split(","):
        binary = nb.find_release(rel)
        if binary is None:
            print(f"m3_check: release {rel} not installed", file=sys.stderr)
            return 4
        for index in ("kept", "removed"):
            with tempfile.TemporaryDirectory(prefix="m3check-") as t:
                store = Path(t) / "store"
                sd = store / "jetstream" / "$G" / "streams" / stream
                shutil.copytree(fixture, sd)
                if index == "removed":
                    (sd / "msgs" / "index.db").unlink(missing_ok=True)
                # `--at` now: the fixture's messages have no age limit
                j = subprocess.run([a.jetdir, "--json", "--no-progress", "verify", str(sd), "--server-version", rel],
                                   capture_output=True, text=True)
                jd = json.loads(j.stdout)
                srv = nb.NatsServer(binary, store, work_dir=Path(t) / "work")
                srv.start()
                try:
                    server = asyncio.run(record(srv.url, stream))
                finally:
                    srv.stop()
                log = [ln.strip() for ln in srv.log_path.read_text(errors="replace").splitlines()
                       if stream in ln and ("[WRN]" in ln or "[ERR]" in ln)]
                diffs = compare(server, jd)
                bad += bool(diffs)
                s = jd["streams"][0]
                run = {"release": rel, "index.db": index, "loaded": server["loaded"]}
                if server["loaded"]:
                    st = server["state"]
                    run["state"] = {k: st.get(k) for k in ("messages", "first_seq", "last_seq",
                                                           "num_deleted", "deleted", "subjects")}
                    run["served"] = server["served"]
                    run["num_pending"] = server["pending"]
                run["log"] = [ln.split("[WRN]")[-1].strip() for ln in log]
                facts.append(run)
                print(f"{rel} index {index}: server {'loaded' if server['loaded'] else 'NOT loaded'}"
                      f", jetdir {(s.get('load') or {}).get('verdict')}: "
                      f"{'agree' if not diffs else '; '.join(diffs)}")
                for ln in log[:3]:
                    print(f"    {ln[:200]}")
    if a.out:
        doc = {"what": f"{fixture} started by each release, with its index.db (kept) and "
                       f"without it (removed): tests/support/m3_check.py --releases {a.releases}",
               "runs": facts}
        Path(a.out).write_text(json.dumps(doc, indent=1) + "\n")
    return 1 if bad else 0


def check_backup(backup: Path, stream: str, releases: list[str], jetdir: str) -> int:
    """The backup restored (STREAM.RESTORE, as `nats stream restore`) by each release, against
    `jetdir verify BACKUP --server-version R`."""
    bad = 0
    for rel in releases:
        binary = nb.find_release(rel)
        if binary is None:
            print(f"m3_check: release {rel} not installed", file=sys.stderr)
            return 4
        j = subprocess.run([jetdir, "--json", "--no-progress", "verify", str(backup),
                            "--server-version", rel], capture_output=True, text=True)
        jd = json.loads(j.stdout)
        with tempfile.TemporaryDirectory(prefix="m3check-") as t:
            srv = nb.NatsServer(binary, Path(t) / "store", work_dir=Path(t) / "work")
            srv.start()
            try:
                server = asyncio.run(restore_and_record(srv.url, backup, stream))
            finally:
                srv.stop()
            log = [ln.split("[WRN]")[-1].strip() for ln in
                   srv.log_path.read_text(errors="replace").splitlines() if "[WRN]" in ln]
        diffs = compare(server, jd)
        bad += bool(diffs)
        print(f"{rel} backup: server {'loaded' if server['loaded'] else 'NOT loaded'}"
              f"{' (' + server['restore_error'] + ')' if 'restore_error' in server else ''}, "
              f"jetdir {(jd['streams'][0].get('load') or {}).get('verdict')}: "
              f"{'agree' if not diffs else '; '.join(diffs)}")
        for ln in log[:3]:
            print(f"    {ln[:200]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
