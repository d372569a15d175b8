"""A local OpenAI Chat Completions endpoint over real HTTP.

The app reaches it through ``OPENAI_BASE_URL`` with the official ``openai`` SDK. It checks the
bearer key and validates requests as the real service does, answers deterministically from the
input, and lets tests inject rate limits, 5xx errors and stalls (``/_sandbox/faults``). Run it
with ``python -m sandbox.openai_sim``; ``app.create_app`` builds the WSGI app in-process.
"""
