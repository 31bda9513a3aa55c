# nnviz on any container host, and on Hugging Face Spaces (README front matter: sdk: docker,
# app_port: 8501). CPU-only torch from PyTorch's own index (the plain PyPI torch on Linux
# x86_64 is the CUDA build, several GB); everything else from requirements.txt.
#
#   docker build -t nnviz .
#   docker run --rm -p 8501:8501 -e NNVIZ_ADMIN_TOKEN=change-me -v nnviz-runs:/data nnviz
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8501 \
    NNVIZ_RUNS_DIR=/data/runs \
    NNVIZ_WARM=1

# uid 1000: the user Hugging Face Spaces runs a container as
RUN useradd --create-home --uid 1000 user \
    && mkdir -p /data/runs \
    && chown -R user:user /data

WORKDIR /home/user/app

# torch first, from the CPU index only; requirements.txt's torch==2.13.0 is then satisfied
# by the installed 2.13.0+cpu and nothing else is fetched from PyTorch's index
COPY requirements.txt ./
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install --no-cache-dir -r requirements.txt

COPY --chown=user:user . .
USER 1000

VOLUME ["/data"]
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_stcore/health' % os.environ['PORT'], timeout=4)"]

# through sh: $PORT is read when the container starts (many hosts set their own); no file
# watcher: the code in an image never changes, and watching costs every script run some CPU
CMD ["sh", "-c", "exec streamlit run app.py --server.port=$PORT --server.address=0.0.0.0 --server.fileWatcherType=none"]
