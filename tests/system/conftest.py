"""What needs real processes: kill -9 and chaos, 200 requests at once, a real browser. Their fixtures are the
service tests' (a uvicorn process per test, tests/service/conftest.py)."""

from tests.service.conftest import make_app, make_service, service  # noqa: F401  (fixtures, registered here)
