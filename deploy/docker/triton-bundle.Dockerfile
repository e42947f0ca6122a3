# syntax=docker/dockerfile:1
# Triton with the project's python-backend model (bundle_llm: a confroute bundle under onnxruntime) and the
# echo model baked in at /opt/confroute/model_repository -- the cpu-dev overlay's Triton. The bundle itself is
# data, mounted at run time ($CONFROUTE_TRITON_BUNDLE, e.g. /bundles/cloud on a PersistentVolumeClaim).
# Build from the repository root:
#   docker build -f deploy/docker/triton-bundle.Dockerfile -t ghcr.io/confroute/triton-bundle:0.1.0 .

FROM python:3.11.11-slim-bookworm AS wheel
WORKDIR /src
RUN python -m pip install --no-cache-dir build==1.2.2.post1
COPY pyproject.toml README.md LICENSE ./
COPY shared shared
COPY cloud_service cloud_service
COPY edge_agent edge_agent
RUN python -m build --wheel --outdir /dist

FROM nvcr.io/nvidia/tritonserver:25.01-py3 AS site
COPY --from=wheel /dist /dist
# The python backend's stub runs the image's own python3; the engine and its runtime go to a folder on
# PYTHONPATH. numpy<2: the stub is built against the numpy 1.x ABI (cloud_service/inference/tritonserver.py).
# confroute itself without dependencies: its protobuf/grpc pins are for the wire, not the engine.
RUN python3 -m pip install --no-cache-dir --break-system-packages --target /opt/confroute/site \
        numpy==1.26.4 onnxruntime==1.20.1 tokenizers==0.21.0 jinja2==3.1.5 \
    && python3 -m pip install --no-cache-dir --break-system-packages --no-deps --target /opt/confroute/site \
        "$(ls /dist/confroute-*.whl)"

FROM nvcr.io/nvidia/tritonserver:25.01-py3
COPY --from=site /opt/confroute/site /opt/confroute/site
COPY cloud_service/model_repository /opt/confroute/model_repository
ENV PYTHONPATH=/opt/confroute/site \
    PYTHONDONTWRITEBYTECODE=1
# The image's unprivileged user triton-server (Kubernetes runs it as 10001, read-only root filesystem).
USER 1000:1000
EXPOSE 8000 8001 8002
HEALTHCHECK NONE
ENTRYPOINT ["tritonserver"]
CMD ["--model-repository=/opt/confroute/model_repository"]
