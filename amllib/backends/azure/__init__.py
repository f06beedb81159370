"""The two Azure ML backends: v1 (azureml-core) and v2 (azure-ai-ml), over what they share (common.py)."""
