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

#: A finished call's record to store in the call log (tasks/call_log.py), queued by the relay
#: at the end of every call (the same record as SUMMARIZE_CALL).
STORE_CALL = "gateframes.log.store_call"

#: A staff member's reply in a conversation (tasks/staff.py), queued by the console.
STAFF_REPLY = "gateframes.console.staff_reply"

#: A staff login code to text (tasks/staff.py), queued by the console's login page so a
#: staff number and any other number get their answer equally fast.
SEND_LOGIN_CODE = "gateframes.console.login_code"
