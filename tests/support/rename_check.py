"""Start a real nats-server on a store dir and record streams, for tests/rename_e2e.rs.

    rename_check.py --server BIN --store DIR --out OUT.json [--accounts A,B]
                    [--restore BACKUP_DIR ...] --record ACC/STREAM ...

--accounts: the server runs from a config with those accounts (JetStream enabled, one user
each: name = account lowercased, password "pw"); without it, plain `-js -sd` and account $G.
--restore: restore these backups (as `nats stream restore`) into $G before recording.
OUT.json: {"version", "names": {ACC: [...]}, "records": {"ACC/STREAM": record_stream()}, "log"}
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
import natsbox  # noqa: E402


class AccountServer(natsbox.NatsServer):
    """natsbox.NatsServer started from a config that declares accounts."""

    def __init__(self, binary: str, store: str, accounts: list[str], work_dir: str):
        super().__init__(binary, store, work_dir=work_dir)
        self.accounts = accounts

    def start(self, timeout: float = 20.0):
        if not self.accounts:
            return super().start(timeout)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = natsbox.free_port()
        accts = "\n".join(
            f"  {a}: {{ jetstream: enabled, users: [ {{user: {a.lower()}, password: pw}} ] }}"
            for a in self.accounts
        )
        text = (
            f"listen: 127.0.0.1:{self.port}\n"
            f"jetstream {{ store_dir: {json.dumps(str(self.store_dir))} }}\n"
            f"accounts {{\n{accts}\n}}\n"
        )
        conf = self.work_dir / "server.conf"
        conf.write_text(text)
        self.config_text = text
        self.args = [self.binary, "-c", str(conf)]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        import socket
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nats-server did not listen:\n{self.log_tail()}")

    def url_for(self, account: str) -> str:
        if not self.accounts:
            return self.url
        return f"nats://{account.lower()}:pw@127.0.0.1:{self.port}"


async def run(srv: AccountServer, accounts: list[str], restores: list[str], wanted: list[str]):
    out: dict = {"names": {}, "records": {}}
    for b in restores:
        nc = await natsbox.connect(srv.url_for("$G"))
        try:
            await natsbox.wait_jetstream(nc)
            await natsbox.restore_stream(nc, b)
        finally:
            await nc.close()
    for acc in accounts or ["$G"]:
        nc = await natsbox.connect(srv.url_for(acc))
        try:
            await natsbox.wait_jetstream(nc)
            names = await natsbox.stream_names(nc)
            out["names"][acc] = names
            for w in wanted:
                a, s = w.split("/", 1)
                if a == acc and s in names:
                    out["records"][w] = await natsbox.record_stream(nc, s)
        finally:
            await nc.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--accounts", default="")
    ap.add_argument("--restore", action="append", default=[])
    ap.add_argument("--record", action="append", default=[])
    a = ap.parse_args()
    accounts = [x for x in a.accounts.split(",") if x]
    work = tempfile.mkdtemp(prefix="rename-check-")
    srv = AccountServer(a.server, a.store, accounts, os.path.join(work, "s"))
    srv.start()
    try:
        res = asyncio.run(run(srv, accounts, a.restore, a.record))
    finally:
        srv.stop()
    res["version"] = natsbox.server_version(a.server)
    try:
        res["log"] = srv.log_path.read_text(errors="replace").splitlines()
    except OSError:
        res["log"] = []
    shutil.rmtree(work, ignore_errors=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
