"""Live dispatch service: HTTP API (FastAPI), durable state (SQLite), map console.

Layers, bottom up: :mod:`~dispatch.service.engine` (the only module that calls the library),
:mod:`~dispatch.service.store` (SQLite log and state), :mod:`~dispatch.service.state` (the
centre's state and the changes it accepts, under one lock), :mod:`~dispatch.service.app` (HTTP
wiring). ``dispatch serve`` (:mod:`dispatch.cli.serve`) starts it with uvicorn.
"""
