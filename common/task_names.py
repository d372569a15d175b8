"""Celery task names, shared by the processes that queue work (web, relay) and the workers.

Producers send by name (``send_task``), so neither the web nor the relay imports the task
modules and what those pull in (the OpenAI SDK, the Twilio client).
"""

#: A Conversations event to answer (tasks/convo.py), queued by the web process.
HANDLE_EVENT = "gateframes.convo.handle_event"

#: A voicemail the assistant left, to text to VOICEMAIL_NOTIFY_TO (tasks/voicemail.py),
#: queued by the relay.
NOTIFY_VOICEMAIL = "gateframes.voicemail.notify"

#: A finished call's record, to summarise and text to STAFF_NOTIFY_TO (and post to
#: STAFF_CONVERSATION_SID) (tasks/summary.py), queued by the relay at the end of every call.
SUMMARIZE_CALL = "gateframes.calls.summarize"
