"""The FastAPI control-plane service over amllib."""
