"""Reusable pieces for driving real nats-server binaries from Python.

Shared by fixtures/make_fixtures.py and tests/support/scenario.py (which the
Rust end-to-end tests run). Needs nats-py (installed into $REPO/.venv by
scripts/install-deps.sh).

Everything runs on 127.0.0.1 only; every server is started with its own
temporary store dir and stopped with SIGTERM to its own PID.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[2]

# Which binaries the tests know about: env var, then the default location.
SERVERS = {
    "2.15": ("NATS_SERVER_215", str(REPO / ".venv" / "bin" / "nats-server")),
    "2.9": ("NATS_SERVER_29", "/usr/sbin/nats-server"),
}


# --------------------------------------------------------------------------
# finding and running servers
# --------------------------------------------------------------------------


def find_server(which: str) -> Optional[str]:
    """Path of the nats-server for `which` ("2.15" or "2.9"), or None."""
    env, default = SERVERS[which]
    path = os.environ.get(env) or default
    if path and os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    return None


# Every release the differential matrix knows, oldest first, and where
# scripts/install-deps.sh puts it. JETDIR_SERVERS="2.12.8=/path/bin,2.9.10=/x"
# overrides single entries. 2.11.1, 2.11.2 and 2.12.2 stand on the old side of the
# boundaries a run on every PyPI release found (subject delete markers at recovery: 2.11.2;
# ack floors in CONSUMER.INFO: 2.11.3; blocks checked against index.db: 2.12.3).
RELEASES = ["2.9.10", "2.10.26", "2.11.1", "2.11.2", "2.11.6", "2.11.11", "2.12.2", "2.12.8",
            "2.14.6", "2.15.1"]


def _release_default(version: str) -> str:
    if version == "2.9.10":
        return "/usr/sbin/nats-server"
    if version == "2.15.1":
        return str(REPO / ".venv" / "bin" / "nats-server")
    return str(REPO / ".servers" / version / "bin" / "nats-server")


def find_release(version: str) -> Optional[str]:
    """Path of the nats-server binary of exactly `version` ("2.12.8"), or None.

    Looks at $JETDIR_SERVERS ("VER=PATH,VER=PATH"), then the location
    scripts/install-deps.sh installs it to."""
    env = os.environ.get("JETDIR_SERVERS", "")
    paths = dict(
        item.split("=", 1) for item in env.replace(";", ",").split(",") if "=" in item
    )
    path = paths.get(version) or _release_default(version)
    if path and os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    return None


def server_version(binary: str) -> str:
    """"2.15.1" for a binary printing "nats-server: v2.15.1"."""
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=30
    ).stdout.strip()
    return out.rsplit("v", 1)[-1]


_GIVEN: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, never one this process was given
    before (nine ports for a 3-node cluster are taken before any server binds them)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


class NatsServer:
    """One nats-server process with JetStream and a store dir.

    `jetstream_extra` is a dict of extra `jetstream { ... }` settings (e.g.
    {"key": "...", "cipher": "chacha"}); when given, the server is started
    from a generated config file (written next to the log) instead of flags.
    """

    def __init__(
        self,
        binary: str,
        store_dir: str | os.PathLike,
        *,
        jetstream_extra: Optional[dict[str, str]] = None,
        work_dir: Optional[str | os.PathLike] = None,
        top_extra: Optional[dict[str, Any]] = None,
    ):
        self.binary = binary
        self.store_dir = Path(store_dir)
        self.jetstream_extra = jetstream_extra
        self.top_extra = top_extra
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="natsbox-"))
        if work_dir is None:
            # a work dir of our own (config, log) goes when the process ends: callers read
            # the log after stop()
            atexit.register(shutil.rmtree, self.work_dir, True)
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None
        self.args: list[str] = []
        self.config_text: Optional[str] = None
        self.log_path = self.work_dir / "server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 20.0) -> "NatsServer":
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        if self.jetstream_extra or self.top_extra:
            lines = [f"listen: 127.0.0.1:{self.port}"]
            for k, v in (self.top_extra or {}).items():
                lines.append(f"{k}: {json.dumps(v)}")
            lines += [
                "jetstream {",
                f"  store_dir: {json.dumps(str(self.store_dir))}",
            ]
            for k, v in (self.jetstream_extra or {}).items():
                lines.append(f"  {k}: {json.dumps(v)}")
            lines.append("}")
            self.config_text = "\n".join(lines) + "\n"
            conf = self.work_dir / "server.conf"
            conf.write_text(self.config_text)
            self.args = [self.binary, "-c", str(conf)]
        else:
            self.args = [
                self.binary, "-js", "-sd", str(self.store_dir),
                "-a", "127.0.0.1", "-p", str(self.port),
            ]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"nats-server exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nats-server did not listen on {self.port}:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM to this server's PID and wait for it to exit (clean shutdown
        flushes index.db / o.dat). Returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise RuntimeError("nats-server did not stop on SIGTERM; killed")
        return self.proc.returncode

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def __enter__(self) -> "NatsServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------
# JetStream API over nats-py
# --------------------------------------------------------------------------


class JsApiError(RuntimeError):
    def __init__(self, subject: str, error: dict):
        super().__init__(f"{subject}: {error}")
        self.error = error


async def connect(url: str):
    import nats  # imported late so that find_server() works without nats-py

    return await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)


async def js_api(nc, subject: str, body: Any = None, timeout: float = 10.0) -> dict:
    """Request on a `$JS.API.*` subject with a JSON body; returns the decoded
    reply, raising JsApiError when it carries an `error`."""
    payload = b"" if body is None else json.dumps(body).encode()
    msg = await nc.request(subject, payload, timeout=timeout)
    resp = json.loads(msg.data) if msg.data else {}
    if isinstance(resp, dict) and resp.get("error"):
        raise JsApiError(subject, resp["error"])
    return resp


async def wait_jetstream(nc, timeout: float = 20.0) -> dict:
    """Wait until `$JS.API.INFO` answers (JetStream finished recovering)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return await js_api(nc, "$JS.API.INFO", timeout=2)
        except Exception as e:  # noqa: BLE001 - retry anything until deadline
            last = e
            await asyncio.sleep(0.1)
    raise RuntimeError(f"JetStream not ready: {last}")


async def create_stream(nc, config: dict) -> dict:
    cfg = {"retention": "limits", "storage": "file", "num_replicas": 1, **config}
    return await js_api(nc, f"$JS.API.STREAM.CREATE.{cfg['name']}", cfg)


async def publish(nc, subject: str, data: bytes, headers: Optional[dict] = None) -> dict:
    """Publish and wait for the stream's PubAck; returns it ({"stream", "seq"})."""
    msg = await nc.request(subject, data, timeout=10, headers=headers)
    ack = json.loads(msg.data)
    if ack.get("error"):
        raise JsApiError(subject, ack["error"])
    return ack


async def delete_msg(nc, stream: str, seq: int, erase: bool) -> dict:
    body: dict = {"seq": seq}
    if not erase:
        body["no_erase"] = True
    return await js_api(nc, f"$JS.API.STREAM.MSG.DELETE.{stream}", body)


async def purge(nc, stream: str, body: Optional[dict] = None) -> dict:
    return await js_api(nc, f"$JS.API.STREAM.PURGE.{stream}", body or {})


async def stream_info(nc, stream: str) -> dict:
    return await js_api(
        nc,
        f"$JS.API.STREAM.INFO.{stream}",
        {"deleted_details": True, "subjects_filter": ">"},
    )


async def stream_names(nc) -> list[str]:
    resp = await js_api(nc, "$JS.API.STREAM.NAMES", {})
    return sorted(resp.get("streams") or [])


async def create_consumer(nc, stream: str, config: dict) -> dict:
    name = config.get("durable_name") or config["name"]
    return await js_api(
        nc,
        f"$JS.API.CONSUMER.CREATE.{stream}.{name}",
        {"stream_name": stream, "config": config},
    )


async def consumer_info(nc, stream: str, name: str) -> dict:
    return await js_api(nc, f"$JS.API.CONSUMER.INFO.{stream}.{name}")


async def consumer_names(nc, stream: str) -> list[str]:
    resp = await js_api(nc, f"$JS.API.CONSUMER.NAMES.{stream}", {})
    return sorted(resp.get("consumers") or [])


async def fetch(nc, stream: str, consumer: str, batch: int, timeout: float = 2.0) -> list:
    """Pull up to `batch` messages from a pull consumer (raw MSG.NEXT)."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    got = []
    try:
        req = {"batch": batch, "expires": int(timeout * 1e9)}
        await nc.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}",
            json.dumps(req).encode(),
            reply=inbox,
        )
        deadline = time.monotonic() + timeout + 1
        while len(got) < batch and time.monotonic() < deadline:
            try:
                m = await sub.next_msg(timeout=max(0.05, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break
            status = (m.headers or {}).get("Status")
            if status:  # 404 no messages / 408 request timeout / 409 ...
                if not m.data:
                    break
                continue
            got.append(m)
    finally:
        await sub.unsubscribe()
    return got


async def ack(nc, msg, kind: bytes = b"+ACK") -> None:
    """Ack (or -NAK / +TERM ...) and wait for the server's confirmation."""
    await nc.request(msg.reply, kind, timeout=5)


def ack_meta(msg) -> dict:
    """Stream/consumer sequence and delivery count from a `$JS.ACK` subject."""
    t = msg.reply.split(".")
    # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>
    # (newer servers may prefix domain/account hash: take from the end)
    return {
        "num_delivered": int(t[-5]),
        "stream_seq": int(t[-4]),
        "consumer_seq": int(t[-3]),
    }


async def get_messages(nc, stream: str, first: int, last: int) -> list[dict]:
    """Every live message first..last via STREAM.MSG.GET (small streams only)."""
    out = []
    for seq in range(first, last + 1) if last >= first > 0 else []:
        try:
            r = await js_api(nc, f"$JS.API.STREAM.MSG.GET.{stream}", {"seq": seq})
        except JsApiError as e:
            if e.error.get("code") == 404:
                continue
            raise
        m = r["message"]
        data = base64.b64decode(m.get("data") or "")
        hdrs = base64.b64decode(m["hdrs"]).decode() if m.get("hdrs") else None
        entry = {"seq": m["seq"], "subject": m["subject"], "time": m["time"], "hdrs": hdrs}
        try:
            entry["data"] = data.decode()
        except UnicodeDecodeError:
            entry["data_b64"] = base64.b64encode(data).decode()
        out.append(entry)
    return out


# --------------------------------------------------------------------------
# snapshot / restore (what `nats stream backup|restore` do)
# --------------------------------------------------------------------------


async def snapshot_stream(
    nc,
    stream: str,
    out_dir: str | os.PathLike,
    *,
    chunk_size: int = 128 * 1024,
    consumers: bool = True,
    idle_timeout: float = 10.0,
) -> dict:
    """Write `out_dir/backup.json` + `out_dir/stream.tar.s2` like
    `nats stream backup STREAM DIR`. Returns {"config", "state", "chunks", "size"}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    chunks = 0
    size = 0
    try:
        resp = await js_api(
            nc,
            f"$JS.API.STREAM.SNAPSHOT.{stream}",
            {
                "deliver_subject": inbox,
                "no_consumers": not consumers,
                "chunk_size": chunk_size,
            },
        )
        with open(out / "stream.tar.s2", "wb") as f:
            while True:
                m = await sub.next_msg(timeout=idle_timeout)
                if not m.data:
                    status = (m.headers or {}).get("Status")
                    if status and status != "204":
                        desc = (m.headers or {}).get("Description", "")
                        raise RuntimeError(f"snapshot failed: {status} {desc}")
                    break
                if m.reply:  # flow-control ack before writing, as jsm.go does
                    await nc.publish(m.reply, b"")
                f.write(m.data)
                chunks += 1
                size += len(m.data)
    finally:
        await sub.unsubscribe()
    backup = {"config": resp["config"], "state": resp["state"]}
    (out / "backup.json").write_text(json.dumps(backup, indent=2))
    return {**backup, "chunks": chunks, "size": size}


async def restore_stream(
    nc, backup_dir: str | os.PathLike, *, chunk: int = 64 * 1024, timeout: float = 60.0
) -> dict:
    """Upload `backup_dir/{backup.json,stream.tar.s2}` like `nats stream restore`.
    Returns the final stream_create_response."""
    d = Path(backup_dir)
    backup = json.loads((d / "backup.json").read_text())
    name = backup["config"]["name"]
    resp = await js_api(nc, f"$JS.API.STREAM.RESTORE.{name}", backup)
    subj = resp["deliver_subject"]
    data = (d / "stream.tar.s2").read_bytes()
    for off in range(0, len(data), chunk):
        r = await nc.request(subj, data[off : off + chunk], timeout=10)
        if r.data:
            body = json.loads(r.data)
            if body.get("error"):
                raise JsApiError(subj, body["error"])
    r = await nc.request(subj, b"", timeout=timeout)
    body = json.loads(r.data)
    if body.get("error"):
        raise JsApiError(subj, body["error"])
    return body


# --------------------------------------------------------------------------
# recording what the server says
# --------------------------------------------------------------------------


def summarize(info: dict, consumers: dict[str, dict]) -> dict:
    """The numbers a reader of the store must reproduce, from STREAM.INFO and
    CONSUMER.INFO replies."""
    st = info["state"]
    return {
        "messages": st["messages"],
        "bytes": st["bytes"],
        "first_seq": st["first_seq"],
        "last_seq": st["last_seq"],
        "first_ts": st.get("first_ts"),
        "last_ts": st.get("last_ts"),
        "num_deleted": st.get("num_deleted", 0),
        "deleted": st.get("deleted") or [],
        "num_subjects": st.get("num_subjects", 0),
        "subjects": st.get("subjects") or {},
        "consumers": {
            name: {
                "delivered": {
                    "consumer_seq": c["delivered"]["consumer_seq"],
                    "stream_seq": c["delivered"]["stream_seq"],
                },
                "ack_floor": {
                    "consumer_seq": c["ack_floor"]["consumer_seq"],
                    "stream_seq": c["ack_floor"]["stream_seq"],
                },
                "num_ack_pending": c["num_ack_pending"],
                "num_redelivered": c["num_redelivered"],
                "num_pending": c["num_pending"],
            }
            for name, c in sorted(consumers.items())
        },
    }


async def record_stream(nc, stream: str, with_messages: bool = True) -> dict:
    """STREAM.INFO (+ every consumer's CONSUMER.INFO, + live messages) and the
    summary built from them."""
    info = await stream_info(nc, stream)
    cons = {n: await consumer_info(nc, stream, n) for n in await consumer_names(nc, stream)}
    rec: dict = {"expected": summarize(info, cons), "info": info, "consumers": cons}
    if with_messages:
        st = info["state"]
        rec["messages"] = await get_messages(nc, stream, st["first_seq"], st["last_seq"])
    return rec
