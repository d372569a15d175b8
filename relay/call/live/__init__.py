"""A phone call on OpenAI GPT-Live: the bridge (:mod:`relay.call.live.bridge`) and the parts
only this engine needs (paced playout, transcript turns, delegated tools)."""
