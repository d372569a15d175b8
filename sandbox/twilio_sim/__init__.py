"""A local Twilio: Conversations v1 and Api 2010 Calls over real HTTP, plus a phone network.

The app and its tests reach it through ``TWILIO_API_BASE_URL`` with the official SDK (see
``sdk.RebasedHttpClient``), so requests, error bodies, paging and signed webhooks are exercised
exactly as against twilio.com. ``/_sandbox/*`` is its control surface. Run it with
``python -m sandbox.twilio_sim``; ``app.create_app`` builds the WSGI app in-process.
"""
