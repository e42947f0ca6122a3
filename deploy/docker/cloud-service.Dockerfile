# syntax=docker/dockerfile:1
# The cloud service image: `cloud-service serve|recalibrate|judge|backpressure|policy ...`.
# Build from the repository root:
#   docker build -f deploy/docker/cloud-service.Dockerfile -t ghcr.io/confroute/cloud-service:0.1.0 .
# The wheel is built once (stage wheel) and installed with the cloud extra into a venv that the slim runtime
# stage copies; no compiler, pip cache or source tree reaches the final image.

FROM python:3.11.11-slim-bookworm AS wheel
WORKDIR /src
RUN python -m pip install --no-cache-dir build==1.2.2.post1
COPY pyproject.toml README.md LICENSE ./
COPY shared shared
COPY cloud_service cloud_service
COPY edge_agent edge_agent
RUN python -m build --wheel --outdir /dist

FROM python:3.11.11-slim-bookworm AS venv
COPY --from=wheel /dist /dist
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir "$(ls /dist/confroute-*.whl)[cloud]" \
    # tritonclient's declared pins would downgrade protobuf below what the generated stubs need (scripts/setup.sh).
    && /opt/venv/bin/pip install --no-cache-dir --no-deps tritonclient==2.73.0

FROM python:3.11.11-slim-bookworm
RUN groupadd --system --gid 10001 confroute \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin confroute
COPY --from=venv /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 50051 9464
# Kubernetes probes the gRPC health service (deploy/k8s); a container engine on its own has nothing to call.
HEALTHCHECK NONE
ENTRYPOINT ["cloud-service"]
CMD ["serve"]
