"""drem: a self-hosted event manager for autonomous model-car races.

The app is built by :func:`drem.app.create_app`; layers and the lap path are in
``docs/architecture.md``.
"""
