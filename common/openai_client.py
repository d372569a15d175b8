"""The OpenAI client for chat replies.

Retries are owned by the Celery task (with backoff and a maintenance reply at the end), so the
SDK's own retries are turned off: two layers of retries would multiply the wait for a reply.
"""

from __future__ import annotations

import functools

from openai import OpenAI

from common.config import Config, get_config


def make_openai(cfg: Config) -> OpenAI:
    cfg.require("OPENAI_API_KEY")
    return OpenAI(
        api_key=cfg.openai_api_key,
        base_url=cfg.openai_base_url,
        timeout=cfg.chat_timeout_seconds,
        max_retries=0,
    )


@functools.cache
def get_openai() -> OpenAI:
    return make_openai(get_config())
