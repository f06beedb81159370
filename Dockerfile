# The control-plane service on the local backend (state in /data); set AZML_BACKEND=azureml
# and the Azure variables to drive a workspace instead.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 AZML_HOME=/data
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY amllib amllib
COPY service service
COPY scripts scripts
COPY training training
COPY data/titanic data/titanic
VOLUME /data
EXPOSE 8000
CMD ["uvicorn", "service.app:app", "--host", "0.0.0.0", "--port", "8000", "--timeout-graceful-shutdown", "5"]
