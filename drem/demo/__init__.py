"""The demo event: a whole race event run end to end by real processes (``drem demo``)."""
