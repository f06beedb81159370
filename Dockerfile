# The control-plane service on the local backend (state in the /data volume); set AZML_BACKEND=azureml-v2
# (or azureml) and the Azure variables to drive a workspace instead. Requests from outside the container
# are not loopback: set AZML_API_TOKENS (name:token,...) or every route but /healthz answers 403.
#   docker build -t aml-control-plane .
#   docker run -p 8000:8000 -v aml:/data -e AZML_API_TOKENS=ci:<a long random token> aml-control-plane
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AZML_HOME=/data \
    AZML_OUTPUT_ROOT=/data/model-api \
    AZML_DATAPATH=titanic-data \
    AZML_SCRIPT=scikit-titanic.py \
    AZML_EXPERIMENT=titanic \
    AZML_MODEL=titanic-model \
    AZML_COMPUTE_NAME=cpu-cluster

WORKDIR /app
RUN groupadd --gid 10001 aml && useradd --create-home --uid 10001 --gid 10001 aml && mkdir -p /data && chown 10001:10001 /data
COPY requirements.txt .
# The pip of python:3.11-slim can fail to resolve these pins (an inconsistent-candidate error seen with an
# older pip); the pinned newer one resolves them, as tests/test_image.py shows in a fresh venv.
RUN pip install --no-cache-dir pip==26.3 && pip install --no-cache-dir -r requirements.txt
COPY amllib amllib
COPY service service
COPY scripts scripts
COPY training training
COPY data/titanic data/titanic

USER 10001:10001
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# --no-proxy-headers: X-Forwarded-For is believed only from the proxies named in AZML_TRUSTED_PROXIES (the app
# applies it); uvicorn's own default would believe it from 127.0.0.1, so anyone behind a sidecar could name any address.
CMD ["uvicorn", "service.app:app", "--host", "0.0.0.0", "--port", "8000", "--no-proxy-headers", "--timeout-graceful-shutdown", "5"]
