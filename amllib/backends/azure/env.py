"""What the training scripts need on an Azure ML compute, stated once.

Kept in step with the training section of requirements.txt; the azureml backend
builds the run's conda environment from it (Docker enabled).
"""

PYTHON_VERSION = "3.11"
TRAINING_PIP_PACKAGES = [
    "azureml-core==1.61.0.post4",
    # The scripts log with MLflow; azureml-mlflow points it at the workspace on Azure (v1 and v2 jobs).
    "mlflow-skinny==3.15.0",
    "azureml-mlflow==1.62.0.post6",
    "numpy==2.4.6",
    "pandas==3.1.1",
    "scikit-learn==1.9.1",
]
