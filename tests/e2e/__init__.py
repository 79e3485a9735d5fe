"""End-to-end tests: the real server (gunicorn + gevent, or ``drem run``) as a subprocess,
driven over HTTP, Socket.IO and a headless Chromium. See ``server.py`` for the harness."""
