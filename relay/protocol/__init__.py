"""One module per wire protocol the relay speaks: each parses and builds its messages in one
place (:mod:`relay.protocol.twilio_media`, :mod:`relay.protocol.realtime`)."""
