"""Loops the app runs beside the requests: the run importer and the retention sweep."""
