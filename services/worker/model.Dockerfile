# A scengrid image with a model package installed: the worker's (and the sharder's, collator's
# and tracker's, which load the model too), FROM the image built from this repository. The
# build context is the model package's folder (its pyproject.toml):
#   scripts/build-image --model PATH worker     (scengrid image build PATH; make images MODEL=PATH)
# builds `podman build -f services/worker/model.Dockerfile --build-arg BASE=scengrid-worker:local PATH`.
ARG BASE=scengrid-worker:local
FROM ${BASE}
# Set only where the build needs the machine's CA bundle (scripts/build-image).
ARG SSL_CERT_FILE
USER 0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY . /tmp/model
# The base image's own pip installs into scengrid's venv (which has none): the package and its
# dependencies, with what the venv holds kept at its locked versions (a constraint), so that
# the package adds to the environment scengrid was tested with and changes nothing in it.
# hadolint ignore=DL3013
RUN export PATH=/usr/local/bin:/usr/bin:/bin \
 && python3 -m pip --python /opt/venv/bin/python freeze --exclude-editable | { grep -v ' @ ' || true; } > /tmp/locked.txt \
 && python3 -m pip --python /opt/venv/bin/python install --no-cache-dir --disable-pip-version-check \
      ${SSL_CERT_FILE:+--cert "$SSL_CERT_FILE"} -c /tmp/locked.txt /tmp/model \
 && rm -rf /tmp/model /tmp/locked.txt \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib/python3.11/site-packages
USER 65532
