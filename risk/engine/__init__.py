"""The risk gate's engine: one account's inputs walked through the gate in event time.

Pure: the wall clock, the command journal and telemetry come in as the small
Protocols of `risk.engine.port`; the Bytewax step (`dataflows.flows.account`) builds
the engine with real adapters and delegates to it.
"""
