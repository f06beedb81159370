"""What the service tells operators: logs (request ids, access lines, JSON) and Prometheus metrics."""
