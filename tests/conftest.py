import pytest
from redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server():
    """The session's one Redis server; see tests/redis_server.py."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_db(redis_server):
    """A flushed Redis for one test, with a blocking client to inspect it."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()
