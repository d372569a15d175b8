"""``python -m webhooks --host H --port P``: the same app (``wsgi:app``) the Procfile's ``web``
process serves, under gunicorn's gevent worker; worker count and timeouts are set here, not
from the Procfile."""

from __future__ import annotations

import argparse
import sys

from gunicorn.app.base import BaseApplication


class WebApplication(BaseApplication):
    def __init__(self, options: dict[str, object]):
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self):
        # Imported here, inside the worker after gevent has patched the standard library.
        from wsgi import app

        return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webhooks", description=__doc__)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    from common.config import ConfigError, get_config

    try:
        get_config()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    WebApplication(
        {
            "bind": f"{args.host}:{args.port}",
            "workers": args.workers,
            "worker_class": "gevent",
            "worker_connections": 1000,
            "timeout": 30,
            "graceful_timeout": 10,
            "accesslog": None,
            "errorlog": "-",
            # One control socket per host by default; several web processes would collide.
            "control_socket_disable": True,
        }
    ).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
