"""``make run``: the whole stack in the foreground, offline when no secrets are configured.

With no OpenAI key it starts the OpenAI chat and Realtime simulators; with no Twilio credentials
it starts the Twilio simulator and points the web process's signature checks at it. Real
credentials in ``.env`` switch each side to the real service, simulating nothing. The
environment and the simulators come from :mod:`sandbox.stack`, as in the test stacks; the three
Procfile processes run under honcho, as on the PaaS. The banner is printed once web and relay
answer ``/healthz``. Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import redis

from common.config import ConfigError, load_config, process_environment
from sandbox import services
from sandbox.services import PYTHON, SANDBOX_PORTS, Credentials, StackError, stack_environment
from sandbox.stack import ProcessStack, wait_ready

PORTS = SANDBOX_PORTS


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
    daemon = [exe, "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(port)]
    subprocess.run([*daemon, "--save", "", "--appendonly", "no"], check=True)
    for _ in range(50):
        try:
            client.ping()
            return
        except redis.RedisError:
            time.sleep(0.1)
    sys.exit(f"redis-server did not come up on port {port}")


def banner(notes: list[str], development: bool) -> str:
    py = PYTHON
    return "\n".join(
        [
            "",
            "GateFrames Gateway is running:",
            f"  web     {PORTS.web_url}   (/twilio/convo, /twilio/voice, /healthz, /metrics)",
            f"  relay   {PORTS.relay_url}    (/healthz, /metrics)",
            f"  console {PORTS.web_url}/staff   (sign in with a STAFF_NUMBERS number; offline, "
            f"the code is in {PORTS.twilio_url}/_sandbox/state under sms)",
            *(f"  {n}" for n in notes),
            "",
            "Try it from another terminal:",
            f'  {py} -m sandbox sms "Do you sell slide gates?"',
            f'  {py} -m sandbox sms "@ai which opener?" --group +14155550101',
            f"  {py} -m sandbox call --out heard.wav",
            f"  {py} -m sandbox call --answered-by machine_end_beep",
            *(
                [f"  or open http://localhost:{PORTS.web}/demo and talk to it (microphone)"]
                if development
                else []
            ),
            "",
            "Ctrl-C stops everything.",
            "",
        ]
    )


def main() -> int:
    try:
        cfg = load_config()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    base = process_environment()
    base.setdefault("APP_ENV", "development")
    base.setdefault("LOG_FORMAT", "text")
    creds = Credentials.sandbox()
    simulate_twilio = not (cfg.twilio_account_sid and cfg.twilio_auth_token)
    simulate_openai = not cfg.openai_api_key
    env = stack_environment(
        base,
        PORTS,
        creds,
        simulate_twilio=simulate_twilio,
        simulate_openai=simulate_openai,
        keep_configured=True,
    )
    if simulate_openai:  # VOICE_ENGINE=live make run: calls go to the GPT-Live simulator
        env["OPENAI_LIVE_URL"] = f"ws://127.0.0.1:{services.SANDBOX_LIVE_PORT}/v1/live/sessions"
    sims: list[services.Service] = []
    notes: list[str] = []
    if simulate_twilio:
        webhook = PORTS.web_url + "/twilio/convo"
        sims.append(services.twilio_sim(PORTS.twilio, creds, webhook_url=webhook))
        notes.append(f"Twilio: simulated at {PORTS.twilio_url}")
    else:
        notes.append("Twilio: REAL account " + cfg.twilio_account_sid[:6] + "…")
    if simulate_openai:
        sims.append(services.openai_sim(PORTS.openai, creds.openai_key))
        sims.append(services.realtime_sim(PORTS.realtime, creds.openai_key))
        sims.append(services.live_sim(services.SANDBOX_LIVE_PORT, creds.openai_key))
        notes.append(
            f"OpenAI: simulated (chat :{PORTS.openai}, realtime :{PORTS.realtime}, "
            f"live :{services.SANDBOX_LIVE_PORT})"
        )
    else:
        notes.append("OpenAI: REAL API")
    if not cfg.encryption_key:
        notes.append("ENCRYPTION_KEY: a throw-away development key was generated")

    ensure_redis(cfg.redis_url)
    # Output goes to this terminal (log_dir None), interleaved with honcho's.
    stack = ProcessStack(None, env)
    # Named processes: the Procfile's release phase is a one-shot check, not a service.
    honcho = services.Service(
        "honcho",
        (PYTHON, "-m", "honcho", "start", "-f", "Procfile", "-p", str(PORTS.web),
         "-e", os.devnull, "web", "relay", "worker"),
    )  # fmt: skip

    def stop(*_: object) -> None:
        if stack.alive("honcho"):
            stack.procs["honcho"].popen.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, stop)
    failed = False
    try:
        stack.add(*sims).start()
        stack.run(honcho)
        for service in (services.web(PORTS.web), services.relay(PORTS.relay)):
            wait_ready(service, stack.procs["honcho"])
        print(banner(notes, env.get("APP_ENV") == "development"), flush=True)
        stack.procs["honcho"].popen.wait()
    except StackError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        failed = True
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        code = stack.procs["honcho"].popen.wait() if "honcho" in stack.procs else 1
        stack.stop()
    return 1 if failed else code


if __name__ == "__main__":
    sys.exit(main())
