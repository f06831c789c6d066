"""The ``lendsms`` command line, run as a real subprocess: init, clients, keys,
--config resolution, and ``serve`` taking a message to the outbox."""

from __future__ import annotations

import base64
import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CN_MOBILE
from tests.subprocess_env import gateway_env

KEY_RE = re.compile(r"^lsk_([a-z0-9]{12})_([A-Za-z0-9_-]+)$")
SIGNATURE = "安心消费金融"
TEXT = f"【{SIGNATURE}】您的验证码是482913，5分钟内有效，请勿告诉他人。"
DEADLINE = 20.0


def clean_env(**extra: str) -> dict[str, str]:
    env = gateway_env()
    env.update(extra)
    return env


def lendsms(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=cwd,
        env=clean_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 1 and exactly one stderr line, starting with ``lendsms:``, holding every needle."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lendsms: ")
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@dataclass
class Deployment:
    """A folder written by ``lendsms init``; ``run`` passes its --config."""

    cwd: Path
    dir: Path

    @property
    def config(self) -> Path:
        return self.dir / "lendsms.toml"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return lendsms(*args, "--config", str(self.config), cwd=self.cwd)

    def ok(self, *args: str) -> list[str]:
        result = self.run(*args)
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert result.stderr == ""
        return result.stdout.splitlines()

    def add_client(self) -> None:
        self.ok("clients", "add", "acme", "--policy", "cn-collection", "--signature", SIGNATURE)

    def create_key(self, *scopes: str) -> str:
        flags = [a for s in scopes or ("send",) for a in ("--scope", s)]
        lines = self.ok("keys", "create", "--client", "acme", *flags)
        assert KEY_RE.fullmatch(lines[-1]), lines
        return lines[-1]


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    result = lendsms("init", "--dir", "D", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return Deployment(cwd=tmp_path, dir=tmp_path / "D")


def audit_events(deployment: Deployment) -> list[tuple[str, dict[str, Any]]]:
    """(event, clear fields) of every record in the deployment's audit segments."""
    out = []
    for segment in sorted((deployment.dir / "var" / "audit").glob("*.jsonl")):
        for raw in segment.read_text(encoding="utf-8").splitlines():
            record = json.loads(raw)
            out.append((record["event"], record["clear"]))
    return out


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


# ---------------------------------------------------------------------- init


def test_init_writes_config_and_private_keys(deployment: Deployment) -> None:
    d = deployment.dir
    assert mode(d / "secrets") == 0o700
    for name in ("data", "index", "audit"):
        key = d / "secrets" / f"{name}.key"
        assert mode(key) == 0o600
        assert len(base64.b64decode(key.read_text().strip())) == 32
    keys = {(d / "secrets" / f"{n}.key").read_text() for n in ("data", "index", "audit")}
    assert len(keys) == 3  # three different keys
    text = deployment.config.read_text(encoding="utf-8")
    assert 'type = "outbox"' in text and 'data = "file:secrets/data.key"' in text
    # the written file is valid: a command that loads it works
    assert deployment.ok("clients", "list") == []


def test_init_never_overwrites(deployment: Deployment) -> None:
    files = [deployment.config, *(deployment.dir / "secrets").iterdir()]
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    result = lendsms("init", "--dir", "D", cwd=deployment.cwd)
    one_error_line(result, "already exists")
    assert result.stdout == ""
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before


def test_init_defaults_to_current_folder(tmp_path: Path) -> None:
    result = lendsms("init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "lendsms.toml").is_file()
    assert mode(tmp_path / "secrets" / "data.key") == 0o600


def test_init_tightens_an_existing_secrets_folder(tmp_path: Path) -> None:
    (tmp_path / "D" / "secrets").mkdir(parents=True, mode=0o755)
    (tmp_path / "D" / "secrets").chmod(0o755)
    result = lendsms("init", "--dir", "D", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert mode(tmp_path / "D" / "secrets") == 0o700


# ---------------------------------------------------------------------- help

HELP = [
    ((), ("init", "serve", "clients", "keys", "--config")),
    (("init",), ("--dir",)),
    (("serve",), ("--config", "--host", "--port")),
    (("clients",), ("add", "update", "list")),
    (("clients", "add"), ("--policy", "--signature", "--rate", "--link-domain", "--config")),
    (("clients", "update"), ("--policy", "--signature", "--rate", "--webhook-secret-file")),
    (("clients", "list"), ("--config",)),
    (("keys",), ("create", "list", "revoke")),
    (("keys", "create"), ("--client", "--scope", "send", "review", "audit", "admin")),
    (("keys", "list"), ("--config",)),
    (("keys", "revoke"), ("KEY_ID",)),
]


@pytest.mark.parametrize(("command", "words"), HELP, ids=[" ".join(c) or "top" for c, _ in HELP])
def test_help(tmp_path: Path, command: tuple[str, ...], words: tuple[str, ...]) -> None:
    result = lendsms(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {' '.join(('lendsms', *command))}")
    for word in words:
        assert word in result.stdout


# ------------------------------------------------------------------- clients


def test_clients_add_update_list(deployment: Deployment) -> None:
    deployment.add_client()
    again = deployment.run("clients", "add", "acme", "--policy", "cn-collection")
    one_error_line(again, "acme", "already exists")
    assert deployment.ok("clients", "update", "acme", "--rate", "50")[-1].startswith("updated")
    [line] = deployment.ok("clients", "list")
    fields = line.split("\t")
    assert fields[0] == "acme"
    assert "policy=cn-collection" in fields
    assert f"signatures={SIGNATURE}" in fields  # kept by an update that does not name them
    assert any(f.startswith("rate=50") for f in fields)


def test_clients_update_unknown_fails(deployment: Deployment) -> None:
    one_error_line(deployment.run("clients", "update", "ghost", "--rate", "5"), "ghost")


BAD_CLIENTS = [
    (("acme", "--policy", "no-such-pack"), "--policy"),
    (("acme", "--signature", f"【{SIGNATURE}】"), "--signature"),
    (("acme", "--signature", f"[{SIGNATURE}]"), "--signature"),
    (("acme", "--signature", "安"), "--signature"),
    (("acme", "--rate", "0"), "--rate"),
    (("acme", "--link-domain", "Not A Domain"), "--link-domain"),
    (("Acme",), "client id"),
    (("--", "-acme"), "client id"),  # after "--", so that it reaches the command as the id
    (("acme!",), "client id"),
    (("a" * 65,), "client id"),
]


def test_clients_add_rejects_bad_input(deployment: Deployment) -> None:
    for args, needle in BAD_CLIENTS:
        result = lendsms(
            "clients", "add", "--config", str(deployment.config), *args, cwd=deployment.cwd
        )
        try:
            one_error_line(result, needle)
        except AssertionError as exc:
            raise AssertionError(f"clients add {args}: {exc}") from None
        assert result.stdout == ""
    assert deployment.ok("clients", "list") == []  # none of them was stored


# ---------------------------------------------------------------------- keys


def test_keys_create_list_revoke(deployment: Deployment) -> None:
    deployment.add_client()
    token = deployment.create_key("send", "review")
    match = KEY_RE.fullmatch(token)
    assert match is not None
    key_id, secret = match.groups()

    [line] = deployment.ok("keys", "list")
    assert line.startswith(f"{key_id}\t") and "client=acme" in line
    assert "scopes=review,send" in line and line.endswith("active")
    assert secret not in line and token not in line

    var = deployment.dir / "var"
    db = var / "lendsms.db"
    assert db.is_file()
    for path in var.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    conn.close()
    assert key_id in dump and secret not in dump

    assert deployment.ok("keys", "revoke", key_id) == [f"revoked {key_id}"]
    [line] = deployment.ok("keys", "list")
    assert line.startswith(f"{key_id}\t") and "\trevoked " in line
    one_error_line(deployment.run("keys", "revoke", key_id), key_id)  # already revoked
    assert audit_events(deployment) == [
        ("key_created", {"key_id": key_id, "client": "acme", "scopes": "review,send"}),
        ("key_revoked", {"key_id": key_id}),  # once: the second revoke records nothing
    ]


def test_keys_revoke_unknown_fails(deployment: Deployment) -> None:
    one_error_line(deployment.run("keys", "revoke", "abcdefghijkl"), "abcdefghijkl")
    assert audit_events(deployment) == []  # no record of a revocation that did not happen


def test_keys_create_for_unknown_client_fails(deployment: Deployment) -> None:
    result = deployment.run("keys", "create", "--client", "ghost", "--scope", "send")
    one_error_line(result, "ghost")
    assert result.stdout == ""
    assert deployment.ok("keys", "list") == []


def test_keys_create_with_bad_scope_fails(deployment: Deployment) -> None:
    deployment.add_client()
    result = deployment.run("keys", "create", "--client", "acme", "--scope", "root")
    one_error_line(result, "--scope")
    assert result.stdout == ""
    assert deployment.ok("keys", "list") == []


# -------------------------------------------------------- --config resolution


def test_config_comes_from_env_var_without_flag(deployment: Deployment) -> None:
    env = clean_env(LENDSMS_CONFIG=str(deployment.config))
    added = lendsms("clients", "add", "viaenv", cwd=deployment.cwd, env=env)
    assert added.returncode == 0, added.stderr
    assert deployment.ok("clients", "list")[0].startswith("viaenv\t")
    # --config wins over the variable
    env = clean_env(LENDSMS_CONFIG=str(deployment.cwd / "missing.toml"))
    listed = lendsms(
        "clients", "list", "--config", str(deployment.config), cwd=deployment.cwd, env=env
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("viaenv\t")


def test_config_defaults_to_lendsms_toml_in_cwd(deployment: Deployment) -> None:
    added = lendsms("clients", "add", "viacwd", cwd=deployment.dir)
    assert added.returncode == 0, added.stderr
    assert deployment.ok("clients", "list")[0].startswith("viacwd\t")
    # without a file in the current folder, the default is named
    missing = lendsms("clients", "list", cwd=deployment.cwd)
    one_error_line(missing, "lendsms.toml", "no such settings file")


def test_serve_with_bad_config_prints_one_line(deployment: Deployment) -> None:
    text = deployment.config.read_text(encoding="utf-8").replace("port = 8080", 'port = "x"')
    deployment.config.write_text(text, encoding="utf-8")
    result = deployment.run("serve")
    assert result.returncode != 0
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "server.port" in result.stderr
    assert result.stdout == ""


def test_serve_with_env_override_error_prints_one_line(deployment: Deployment) -> None:
    env = clean_env(LENDSMS_SERVER__PORT="99999")
    result = lendsms("serve", "--config", str(deployment.config), cwd=deployment.cwd, env=env)
    assert result.returncode != 0
    [line] = result.stderr.splitlines()
    assert "server.port" in line and "65535" in line


# --------------------------------------------------------------------- serve


SERVE = [sys.executable, "-m", "gateway.cli", "serve"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(url: str, body: dict[str, Any] | None = None, token: str = "") -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    method = "GET" if body is None else "POST"
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (http://127.0.0.1)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 (http://127.0.0.1)
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode(errors="replace")


@pytest.fixture
def server_process(deployment: Deployment) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    out = (deployment.cwd / "serve.out").open("wb")
    err = (deployment.cwd / "serve.err").open("wb")
    proc = subprocess.Popen(
        [*SERVE, "--config", str(deployment.config), "--port", str(port)],
        cwd=deployment.cwd,
        env=clean_env(),
        stdout=out,
        stderr=err,
    )
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=DEADLINE)
        out.close()
        err.close()


def wait_until_up(proc: subprocess.Popen[bytes], port: int, err: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    while True:
        assert proc.poll() is None, f"server exited {proc.returncode}: {err.read_text()}"
        try:
            status, body = request(f"http://127.0.0.1:{port}/healthz")
        except OSError:
            status, body = 0, None
        if status == 200:
            assert body == {"status": "ok"}
            return
        assert time.monotonic() < deadline, "server did not come up"
        time.sleep(0.05)


def outbox_line(path: Path, message_id: str) -> dict[str, Any] | None:
    if not path.exists():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if record.get("id") == message_id:
                return dict(record)
    return None


def test_serve_takes_a_message_to_the_outbox(
    deployment: Deployment, server_process: tuple[subprocess.Popen[bytes], int]
) -> None:
    deployment.add_client()
    token = deployment.create_key("send")
    proc, port = server_process
    err = deployment.cwd / "serve.err"
    wait_until_up(proc, port, err)

    body = {
        "to": CN_MOBILE,
        "borrower_id": "B-20931",
        "purpose": "verification_code",
        "text": TEXT,
        "reference": "login-1",
    }
    status, accepted = request(f"http://127.0.0.1:{port}/v1/messages", body, token)
    assert status == 202, accepted
    message_id = accepted["id"]
    assert accepted["status"] == "queued"

    outbox = deployment.dir / "var" / "outbox.jsonl"
    deadline = time.monotonic() + DEADLINE
    while (line := outbox_line(outbox, message_id)) is None:
        assert proc.poll() is None, err.read_text()
        assert time.monotonic() < deadline, "no outbox line"
        time.sleep(0.05)
    assert line["to"] == CN_MOBILE and line["body"] == TEXT and line["provider"] == "outbox"

    # an unknown key is refused; the server keeps running
    status, _ = request(f"http://127.0.0.1:{port}/v1/messages", body, "lsk_abcdefghijkl_nope")
    assert status == 401

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0

    out_text = (deployment.cwd / "serve.out").read_text(encoding="utf-8")
    assert f":{port}" in out_text
    lines = err.read_text(encoding="utf-8").splitlines()
    assert lines, "the server logged nothing"
    records = [json.loads(raw) for raw in lines]
    assert all(isinstance(r, dict) and {"ts", "level", "msg"} <= r.keys() for r in records)
    assert any(r.get("route") == "/v1/messages" and r.get("status") == 202 for r in records)
    secret = token.split("_", 2)[2]
    forbidden = (CN_MOBILE, CN_MOBILE[3:], TEXT, "482913", token, secret)
    for raw in [*lines, out_text]:
        for value in forbidden:
            assert value not in raw
