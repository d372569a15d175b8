"""A GPT-Live simulator: OpenAI's ``wss://api.openai.com/v1/live/sessions`` over a real WebSocket,
as the openai SDK (``openai.types.live``, the version pinned in requirements.txt) types it.

Run it with ``python -m sandbox.live_sim --port P --api-key K [--speed X]`` or from
:func:`sandbox.services.live_sim` (tests, ``make run`` on port 5600). It never imports the
product (``common/``, ``relay/``, ``tasks/``, ``webhooks/``): shapes come from the SDK, the rules
the SDK only describes are written here.

Modules, by responsibility:

- :mod:`~sandbox.live_sim.server`: the handshake (``Authorization: Bearer`` only, no query
  string, no ``OpenAI-Beta``) and the WebSocket loop;
- :mod:`~sandbox.live_sim.session`: one session: ``session.start`` first and once, every client
  event and its answer, caller speech → ``session.input_transcript.delta``, server-side ends
  (``session.closed`` reasons), ``session.usage.updated``;
- :mod:`~sandbox.live_sim.schema` and :mod:`~sandbox.live_sim.config`: strict checks (unknown
  keys at any depth, models, voices, formats, immutable fields) with OpenAI-style ``error``
  events;
- :mod:`~sandbox.live_sim.speech`: the model's voice (``session.output_audio.delta`` +
  ``session.output_transcript.delta`` at a real-time pace divided by ``--speed``), full
  duplex (it yields when the caller talks over it);
- :mod:`~sandbox.live_sim.delegation` and :mod:`~sandbox.live_sim.backend`: ``responses``
  delegation: ``session.delegation.created``, ``response.event`` with function calls, the
  ``response.item.create`` / ``response.create`` round trip;
- :mod:`~sandbox.live_sim.control`: the ``/_sandbox/...`` endpoints (listed there);
- :mod:`~sandbox.live_sim.script`: what the scripted caller says and which tools get called;
- :mod:`~sandbox.live_sim.audio`: ``audio/pcm`` 24/16 kHz, ``audio/pcmu``, ``audio/pcma``.

How a test drives a call (the same way as the Realtime simulator, so one phone simulator
drives both):

1. *The phone speaks* by sending energy: a tone (``sandbox.phone.tone(800)``, or
   ``LiveFormat.tone``) inside its continuous audio stream, silence around it. The simulator's
   VAD hears speech start (a speaking model yields at once) and stop (500 ms of silence), and
   the turn's words are whatever ``GET /_sandbox/caller_says?text=...`` queued, streamed as
   ``session.input_transcript.delta`` (unscripted: ``(caller spoke 0.8 s)``).
2. *The model answers*: in words (``REPLY`` in :mod:`~sandbox.live_sim.speech`), or, with
   ``responses`` delegation, with a tool call: words that ask for one (``transfer me to a
   person``, ``goodbye``, ``text me the link``) or a scripted
   ``GET /_sandbox/call_tool?name=end_call&arguments={"reason":"done"}`` make the next caller
   turn delegate; the client answers every call (``response.item.create`` with a
   ``function_call_output``), then ``response.create``, and the model says
   ``Okay: <output message>``. ``GET /_sandbox/tool_outputs`` lists what it received.
3. *Greeting and fixed messages*: ``session.instructions.append`` with
   ``Greet the caller now`` (a greeting) or ``Say exactly "..."`` (those words) is spoken at once;
   ``session.output_audio.fixture.play`` plays a recorded clip.
4. *Server-side ends and faults*:
   ``GET /_sandbox/end?reason=expired|content|remote_hangup|connection_lost``,
   ``GET /_sandbox/error?code=...&message=...``, ``GET /_sandbox/settings?lifetime_s=...``,
   ``GET /_sandbox/faults?reject_connects=N&drop_after_ms=MS&drop_now=1``, and
   ``GET /_sandbox/inject?raw=...`` for a malformed or unknown server event.
5. *What it received*: ``GET /_sandbox/sessions`` (every client event but audio, errors sent,
   caller turns, the model's turns and whether each was yielded, delegations, tool outputs).

``--echo`` turns the model into a mirror for relay tests and benchmarks: each appended chunk
comes back as one ``session.output_audio.delta``.
"""
