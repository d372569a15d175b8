"""``make run``: the whole stack in the foreground, offline when no secrets are configured.

With no OpenAI key it starts the OpenAI chat and Realtime simulators; with no Twilio credentials
it starts the Twilio simulator and points the web process's signature checks at it. Real
credentials in ``.env`` switch each side to the real service, simulating nothing. The three
Procfile processes run under honcho, exactly as on the PaaS. Ctrl-C stops everything.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from common.config import ConfigError, load_config, process_environment

ROOT = Path(__file__).resolve().parent.parent
WEB_PORT, RELAY_PORT = 5000, 5100  # honcho: base port, +100 per Procfile entry
TWILIO_SIM_PORT, OPENAI_SIM_PORT, REALTIME_SIM_PORT = 5300, 5400, 5500
SANDBOX_ACCOUNT_SID = "AC" + "5a" * 16
SANDBOX_AUTH_TOKEN = "sandbox-auth-token"
SANDBOX_OPENAI_KEY = "sk-sandbox"


def ensure_redis(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
        return
    except redis.RedisError:
        pass
    host = client.connection_pool.connection_kwargs.get("host", "localhost")
    port = client.connection_pool.connection_kwargs.get("port", 6379)
    exe = shutil.which("redis-server")
    if host not in ("localhost", "127.0.0.1") or exe is None:
        sys.exit(
            f"Redis is not answering at {url}. Start it, for example:\n"
            f"  redis-server --daemonize yes --bind 127.0.0.1 --port {port} --save ''"
        )
    print(f"starting redis-server on 127.0.0.1:{port}")
    subprocess.run(
        [
            exe,
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
    )
    for _ in range(50):
        try:
            client.ping()
            return
        except redis.RedisError:
            time.sleep(0.1)
    sys.exit(f"redis-server did not come up on port {port}")


def main() -> int:
    try:
        cfg = load_config()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    env = process_environment()
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("APP_ENV", "development")
    env.setdefault("LOG_FORMAT", "text")
    env["PYTHONUNBUFFERED"] = "1"
    sims: list[tuple[str, list[str]]] = []
    notes: list[str] = []
    py = sys.executable

    if not (cfg.twilio_account_sid and cfg.twilio_auth_token):
        env.update(
            TWILIO_ACCOUNT_SID=SANDBOX_ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=SANDBOX_AUTH_TOKEN,
            TWILIO_API_BASE_URL=f"http://127.0.0.1:{TWILIO_SIM_PORT}",
            PUBLIC_BASE_URL=f"http://127.0.0.1:{WEB_PORT}",
        )
        sims.append(
            (
                "twilio-sim",
                [
                    py,
                    "-m",
                    "sandbox.twilio_sim",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(TWILIO_SIM_PORT),
                    "--account-sid",
                    SANDBOX_ACCOUNT_SID,
                    "--auth-token",
                    SANDBOX_AUTH_TOKEN,
                    "--webhook-url",
                    f"http://127.0.0.1:{WEB_PORT}/twilio/convo",
                ],
            )
        )
        notes.append(f"Twilio: simulated at http://127.0.0.1:{TWILIO_SIM_PORT}")
    else:
        notes.append("Twilio: REAL account " + cfg.twilio_account_sid[:6] + "…")
    if not cfg.openai_api_key:
        env.update(
            OPENAI_API_KEY=SANDBOX_OPENAI_KEY,
            OPENAI_BASE_URL=f"http://127.0.0.1:{OPENAI_SIM_PORT}/v1",
            OPENAI_REALTIME_URL=f"ws://127.0.0.1:{REALTIME_SIM_PORT}/v1/realtime",
        )
        sims.append(
            (
                "openai-sim",
                [
                    py,
                    "-m",
                    "sandbox.openai_sim",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(OPENAI_SIM_PORT),
                    "--api-key",
                    SANDBOX_OPENAI_KEY,
                ],
            )
        )
        sims.append(
            (
                "realtime-sim",
                [
                    py,
                    "-m",
                    "sandbox.realtime_sim",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(REALTIME_SIM_PORT),
                    "--api-key",
                    SANDBOX_OPENAI_KEY,
                ],
            )
        )
        notes.append(f"OpenAI: simulated (chat :{OPENAI_SIM_PORT}, realtime :{REALTIME_SIM_PORT})")
    else:
        notes.append("OpenAI: REAL API")
    if not cfg.encryption_key:
        env["ENCRYPTION_KEY"] = base64.b64encode(secrets.token_bytes(32)).decode()
        notes.append("ENCRYPTION_KEY: a throw-away development key was generated")
    env.setdefault("RELAY_PUBLIC_URL", f"ws://127.0.0.1:{RELAY_PORT}")
    if not cfg.public_base_url:
        env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{WEB_PORT}")

    ensure_redis(cfg.redis_url)
    children = [subprocess.Popen(args, env=env, cwd=ROOT) for _, args in sims]
    # Named processes: the Procfile's release phase is a one-shot check, not a service.
    services = ["web", "relay", "worker"]
    honcho = subprocess.Popen(
        [
            py,
            "-m",
            "honcho",
            "start",
            "-f",
            "Procfile",
            "-p",
            str(WEB_PORT),
            "-e",
            os.devnull,
            *services,
        ],
        env=env,
        cwd=ROOT,
    )
    time.sleep(2.5)
    print(
        "\n".join(
            [
                "",
                "GateFrames Gateway is running:",
                f"  web     http://127.0.0.1:{WEB_PORT}   "
                "(/twilio/convo, /twilio/voice, /healthz, /metrics)",
                f"  relay   ws://127.0.0.1:{RELAY_PORT}    (/healthz, /metrics)",
                *(f"  {n}" for n in notes),
                "",
                "Try it from another terminal:",
                f'  {py} -m sandbox sms "Do you sell slide gates?"',
                f'  {py} -m sandbox sms "@ai which opener?" --group +14155550101',
                f"  {py} -m sandbox call --out heard.wav",
                f"  {py} -m sandbox call --answered-by machine_end_beep",
                *(
                    [f"  or open http://localhost:{WEB_PORT}/demo and talk to it (microphone)"]
                    if env.get("APP_ENV") == "development"
                    else []
                ),
                "",
                "Ctrl-C stops everything.",
                "",
            ]
        ),
        flush=True,
    )

    def stop(*_: object) -> None:
        for proc in [honcho, *children]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, stop)
    try:
        code = honcho.wait()
    except KeyboardInterrupt:
        stop()
        code = honcho.wait()
    for proc in children:
        if proc.poll() is None:
            proc.terminate()
        proc.wait()
    return code


if __name__ == "__main__":
    sys.exit(main())
