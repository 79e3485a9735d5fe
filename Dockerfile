# Multi-stage image for the drem server: build wheels and front-end files, then a slim
# non-root runtime that migrates the database and starts gunicorn (gevent) on wsgi:app.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update -q && apt-get install -y -q --no-install-recommends npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml package.json ./
# Wheels of the server's dependencies: pyproject.toml's `dependencies` and its `server` extra
# (not `car`: TensorFlow, LiteRT and OpenCV are for the car client only).
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['server']))" > requirements-server.txt \
 && pip wheel --wheel-dir /wheels -r requirements-server.txt
RUN npm install --no-audit --no-fund --loglevel=error

FROM python:3.11-slim-bookworm
# Pango for WeasyPrint (PDF results), fonts with Latin and Japanese glyphs (no web fonts)
RUN apt-get update -q && apt-get install -y -q --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
    fonts-dejavu-core fonts-ipafont-gothic && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 1000 drem
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
COPY --from=build /src/node_modules ./node_modules
COPY wsgi.py pyproject.toml ./
COPY drem ./drem
# The two plain-Python car_client modules drem imports: the car protocol's words and the
# model graph check (the same allow-list on the server and on the car).
COPY car_client/__init__.py car_client/protocol.py car_client/model_check.py ./car_client/
COPY migrations ./migrations
COPY deploy ./deploy
RUN pip install --no-cache-dir --no-deps -e . && mkdir -p /app/instance && chown -R drem /app/instance
USER drem
ENV DREM_ENV=production DREM_INSTANCE_PATH=/app/instance PORT=8000
EXPOSE 8000
CMD ["sh", "-c", "drem init && exec gunicorn -c python:drem.platform.serving --bind 0.0.0.0:${PORT} wsgi:app"]
