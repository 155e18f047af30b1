"""The peer: CrowdSec's local API, the blocklist service many operators run, on loopback.

Unpacks Debian's `crowdsec` package into a scratch directory (`apt-get download crowdsec`
and `dpkg -x`: never installed, never run as a service), writes a configuration that
keeps everything in that directory (its own SQLite file, no agent, no central API, no
metrics listener), registers a machine and a bouncer with `cscli`, starts the local API
(`crowdsec -no-cs`), and seeds decisions through the API as a watcher does
(`POST /v1/alerts`, 1,000 decisions an alert). A bouncer then asks
`GET /v1/decisions?scope=ip&value=…` with its API key: CrowdSec's own per-request check,
an indexed read of its SQLite file, unaudited. Everything it started is stopped by PID.

Used by bench/risk_query.py (interleaved with the ledger's runs); on its own:

    .venv/bin/python -m bench.peer_crowdsec --decisions 100000 --seconds 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import free_port, wrk

PACKAGE = "crowdsec"
CACHE = Path(tempfile.gettempdir()) / "ledger-bench-crowdsec"
PER_ALERT = 1000


def unpacked() -> Path:
    """The package's files, downloaded and unpacked once (kept for later runs)."""
    root = CACHE / "root"
    if (root / "usr/bin/crowdsec").exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    for old in CACHE.glob("*.deb"):
        old.unlink()
    subprocess.run(["apt-get", "download", PACKAGE], cwd=CACHE, check=True, capture_output=True)
    (deb,) = CACHE.glob("*.deb")
    subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    return root


def version(root: Path) -> str:
    out = subprocess.run(
        [str(root / "usr/bin/crowdsec"), "-version"], capture_output=True, text=True, check=False
    )
    found = re.search(r"version: (\S+)", out.stdout + out.stderr)
    return found.group(1) if found else "unknown"


def _config(root: Path, scratch: Path, port: int) -> Path:
    etc, data, hub = scratch / "etc", scratch / "data", scratch / "hub"
    for folder in (etc, data, hub, etc / "acquis.d", etc / "notifications"):
        folder.mkdir(parents=True, exist_ok=True)
    for name in ("profiles.yaml", "simulation.yaml"):
        shutil.copy(root / "etc/crowdsec" / name, etc / name)
    (etc / "acquis.yaml").write_text("")
    (etc / "console.yaml").write_text("share_manual_decisions: false\nshare_tainted: false\n")
    (hub / ".index.json").write_text("{}")
    config = etc / "config.yaml"
    config.write_text(
        f"""common:
  daemonize: false
  log_media: file
  log_level: warning
  log_dir: {scratch}
  working_dir: .
config_paths:
  config_dir: {etc}/
  data_dir: {data}/
  simulation_path: {etc}/simulation.yaml
  hub_dir: {hub}/
  index_path: {hub}/.index.json
  notification_dir: {etc}/notifications/
  plugin_dir: {root}/usr/lib/crowdsec/plugins/
crowdsec_service:
  acquisition_path: {etc}/acquis.yaml
  acquisition_dir: {etc}/acquis.d
cscli:
  output: json
db_config:
  log_level: warning
  type: sqlite
  db_path: {data}/crowdsec.db
  flush:
    max_items: 5000000
    max_age: 3650d
api:
  client:
    credentials_path: {etc}/local_api_credentials.yaml
  server:
    log_level: warning
    listen_uri: 127.0.0.1:{port}
    profiles_path: {etc}/profiles.yaml
    console_path: {etc}/console.yaml
    trusted_ips:
      - 127.0.0.1
prometheus:
  enabled: false
"""
    )
    return config


@dataclass
class Peer:
    base: str
    api_key: str
    pid: int
    listed: list[str]  # the values seeded, in order
    version: str

    @property
    def url(self) -> str:
        return f"{self.base}/v1/decisions"


def addresses(count: int, rng: random.Random) -> list[str]:
    """``count`` distinct IPv4 addresses."""
    picked = rng.sample(range(1 << 24, 1 << 32), count)
    return [str(ipaddress.IPv4Address(n)) for n in picked]


@contextmanager
def running_peer(decisions: int, *, rng: random.Random) -> Iterator[Peer]:
    """CrowdSec's local API with ``decisions`` bans, seeded through its API."""
    root = unpacked()
    scratch = Path(tempfile.mkdtemp(prefix="ledger-bench-crowdsec-"))
    port = free_port()
    config = _config(root, scratch, port)
    cscli = [str(root / "usr/bin/cscli"), "-c", str(config)]
    password = rng.randbytes(16).hex()
    subprocess.run(
        [*cscli, "machines", "add", "bench", "--password", password, "--force", "-f",
         str(scratch / "etc/local_api_credentials.yaml")],
        check=True, capture_output=True,
    )  # fmt: skip
    api_key = subprocess.run(
        [*cscli, "bouncers", "add", "bench", "-o", "raw"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    with (scratch / "crowdsec.out").open("w") as out:
        proc = subprocess.Popen(
            [str(root / "usr/bin/crowdsec"), "-c", str(config), "-no-cs", "-no-capi"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base, proc)
        listed = addresses(decisions, rng)
        _seed(base, password, listed)
        yield Peer(base, api_key, proc.pid, listed, version(root))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)


def _wait(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("crowdsec exited at start")
        try:
            httpx.get(f"{base}/v1/decisions", timeout=1)
        except httpx.TransportError:
            time.sleep(0.2)
        else:
            return
    raise RuntimeError("crowdsec's local API did not start")


def _seed(base: str, password: str, values: list[str]) -> None:
    """Bans for ``values``, pushed as a watcher pushes them: alerts carrying decisions."""
    with httpx.Client(base_url=base, timeout=300) as http:
        login = http.post(
            "/v1/watchers/login",
            json={"machine_id": "bench", "password": password, "scenarios": []},
        )
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for start in range(0, len(values), PER_ALERT):
            chunk = values[start : start + PER_ALERT]
            alert = {
                "scenario": "bench/refund-abuse",
                "scenario_hash": "",
                "scenario_version": "1",
                "message": f"bench seed {start}",
                "events_count": 1,
                "events": [],
                "start_at": now,
                "stop_at": now,
                "capacity": 0,
                "leakspeed": "0",
                "simulated": False,
                "remediation": True,
                "source": {"scope": "ip", "value": chunk[0]},
                "decisions": [
                    {
                        "origin": "cscli",
                        "type": "ban",
                        "scope": "ip",
                        "value": value,
                        "duration": "8760h",
                        "scenario": "bench/refund-abuse",
                    }
                    for value in chunk
                ],
            }
            http.post("/v1/alerts", json=[alert], headers=headers).raise_for_status()


# wrk: a bouncer's check of a random address from the pool, with its API key.
LUA = """
local values = {%s}
request = function()
  local v = values[math.random(#values)]
  return wrk.format("GET", "/v1/decisions?scope=ip&value=" .. v, {["X-Api-Key"]="%s"})
end
"""


def pool(peer: Peer, size: int, listed_share: float, rng: random.Random) -> list[str]:
    """Addresses to ask about: ``listed_share`` of them listed, the rest not."""
    listed = round(size * listed_share)
    unlisted = addresses(size - listed, rng)  # 2^32 addresses: a clash is negligible
    values = rng.sample(peer.listed, listed) + unlisted
    rng.shuffle(values)
    return values


def lua(peer: Peer, values: list[str]) -> str:
    return LUA % (",".join(f'"{v}"' for v in values), peer.api_key)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--listed-share", type=float, default=0.05)
    args = parser.parse_args()
    rng = random.Random(19)
    t0 = time.monotonic()
    with running_peer(args.decisions, rng=rng) as peer, tempfile.TemporaryDirectory() as tmp:
        seeded = time.monotonic() - t0
        script = Path(tmp) / "peer.lua"
        values = pool(peer, 5000, args.listed_share, rng)
        script.write_text(lua(peer, values))
        check = httpx.get(
            peer.url,
            params={"scope": "ip", "value": peer.listed[0]},
            headers={"X-Api-Key": peer.api_key},
        )
        print(f"crowdsec {peer.version}: {args.decisions:,} decisions seeded in {seeded:.0f} s")
        print(f"a listed address answers {check.status_code}: {check.text[:120]}")
        wrk(peer.url, connections=args.connections, seconds=3, script=str(script))
        result = wrk(
            peer.url, connections=args.connections, seconds=args.seconds, script=str(script)
        )
        print(result.row("GET /v1/decisions (crowdsec LAPI)"))


if __name__ == "__main__":
    main()
