"""The launcher: `python -m localaws` in the foreground and `scripts/local-aws`."""
from __future__ import annotations

import re
import socket
import subprocess
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .conftest import HERE, LocalAws

SCRIPT = HERE.parent.parent / "scripts" / "local-aws"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def health(url: str) -> dict:
    import json
    with urllib.request.urlopen(url + "/_localaws/health", timeout=5) as resp:
        return json.loads(resp.read())


def script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=180)


def test_foreground_prints_one_listening_line(localaws: LocalAws) -> None:
    assert re.fullmatch(r"listening on 127\.0\.0\.1:\d+", localaws.ready_line)  # type: ignore[attr-defined]


def test_script_runs_two_instances_and_stops_them(tmp_path: Path) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    ports = ["0", str(free_port())]  # a free one picked by the server, and a given one
    with ThreadPoolExecutor(2) as pool:
        started = list(pool.map(lambda i: script("start", "--port", ports[i], "--state-dir", str(dirs[i])), [0, 1]))
    try:
        urls = []
        for result, state in zip(started, dirs):
            assert result.returncode == 0, result.stderr
            lines = result.stdout.splitlines()
            url = lines[0].split("=", 1)[1]
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
            assert lines == [f"export AWS_ENDPOINT_URL={url}", "export AWS_REGION=us-east-1",
                             "export AWS_DEFAULT_REGION=us-east-1", "export AWS_ACCESS_KEY_ID=testing",
                             "export AWS_SECRET_ACCESS_KEY=testing"]
            assert health(url) == {"status": "ok"}
            assert (state / "pid").exists() and (state / "port").read_text().strip() == url.rsplit(":", 1)[1]
            env = script("env", "--state-dir", str(state))
            assert env.returncode == 0 and env.stdout == result.stdout
            assert script("status", "--state-dir", str(state)).stdout.startswith(f"running on {url}")
            urls.append(url)
        assert urls[0] != urls[1] and urls[1].endswith(f":{ports[1]}")
        # start on a running instance is idempotent
        again = script("start", "--state-dir", str(dirs[0]))
        assert again.returncode == 0 and again.stdout == started[0].stdout
    finally:
        stopped = [script("stop", "--state-dir", str(d)) for d in dirs]
    for result, state in zip(stopped, dirs):
        assert result.returncode == 0
        assert not (state / "pid").exists()
        status = script("status", "--state-dir", str(state))
        assert status.returncode == 3 and status.stdout.strip() == "not running"
        assert script("env", "--state-dir", str(state)).returncode == 1


def test_script_fails_loudly_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = script("start", "--port", str(port), "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "exited during start-up" in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / "pid").exists()
