# qadmin: the worker, the scheduler and the web console in one image (deploy/README.md).
#
#   docker build -t qadmin .
#   docker run --rm -e QADMIN_URL=postgresql://... qadmin worker --import myapp.jobs
#
# Two stages: the first installs qadmin into a virtual environment, the second copies only
# that environment, so nothing pip or a build needed stays in the image.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/qadmin
WORKDIR /src
COPY pyproject.toml README.md ./
COPY qadmin ./qadmin
# every dependency ships a wheel for this platform (psycopg[binary], hiredis): no compiler needed
RUN /opt/qadmin/bin/pip install . \
 && /opt/qadmin/bin/pip uninstall --yes pip setuptools wheel

FROM python:3.11-slim

ENV PATH=/opt/qadmin/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system qadmin \
 && useradd --system --gid qadmin --home-dir /var/lib/qadmin --create-home --shell /usr/sbin/nologin qadmin
COPY --from=build /opt/qadmin /opt/qadmin
USER qadmin
WORKDIR /var/lib/qadmin

# the web console's port (compose.yaml publishes it on 127.0.0.1 only)
EXPOSE 8080
# the backend at QADMIN_URL answers: what every role needs (compose.yaml gives the web an HTTP check)
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["qadmin", "queues", "--json"]
# SIGTERM is how a worker is asked to finish its jobs and stop
STOPSIGNAL SIGTERM
ENTRYPOINT ["qadmin"]
CMD ["--help"]
