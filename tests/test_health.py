import json

import pytest
import pytest_twisted
import treq
from prometheus_client import CollectorRegistry, Counter
from twisted.internet import defer, reactor
from twisted.web.server import Site

from teltonika.health import HealthApp


class Readiness:
    """A readiness check the test steers."""

    def __init__(self):
        self.answer = defer.succeed([])

    def __call__(self):
        return self.answer


@pytest.fixture
def served():
    registry = CollectorRegistry()
    readiness = Readiness()
    app = HealthApp(registry, readiness)
    port = reactor.listenTCP(0, Site(app.resource()), interface="127.0.0.1")
    base = "http://127.0.0.1:%d" % (port.getHost().port,)
    yield base, registry, readiness
    pytest_twisted.blockon(defer.maybeDeferred(port.stopListening))


@defer.inlineCallbacks
def fetch(url, method="GET"):
    response = yield treq.request(method, url, persistent=False)
    body = yield response.content()
    return response, body


def content_type(response):
    return response.headers.getRawHeaders("content-type")[0]


@pytest_twisted.inlineCallbacks
def test_health(served):
    base, _, _ = served
    response, body = yield fetch(base + "/health")
    assert response.code == 200
    assert content_type(response) == "application/json"
    assert json.loads(body) == {"status": "ok"}


@pytest_twisted.inlineCallbacks
def test_ready(served):
    base, _, _ = served
    response, body = yield fetch(base + "/ready")
    assert response.code == 200
    assert content_type(response) == "application/json"
    assert json.loads(body) == {"status": "ready"}


@pytest_twisted.inlineCallbacks
def test_not_ready_with_reasons(served):
    base, _, readiness = served
    readiness.answer = defer.succeed(["redis: not answering", "listener tcp:5027"])
    response, body = yield fetch(base + "/ready")
    assert response.code == 503
    assert content_type(response) == "application/json"
    assert json.loads(body) == {
        "status": "not_ready",
        "reasons": ["redis: not answering", "listener tcp:5027"],
    }


@pytest_twisted.inlineCallbacks
def test_waits_for_a_slow_readiness_answer(served):
    base, _, readiness = served
    readiness.answer = defer.Deferred()
    pending = fetch(base + "/ready")
    reactor.callLater(0.05, readiness.answer.callback, ["still loading"])
    response, body = yield pending
    assert response.code == 503
    assert json.loads(body)["reasons"] == ["still loading"]


@pytest_twisted.inlineCallbacks
def test_failing_readiness_is_not_ready(served):
    base, _, readiness = served
    readiness.answer = defer.fail(ConnectionError("redis gone"))
    response, body = yield fetch(base + "/ready")
    assert response.code == 503
    assert json.loads(body) == {
        "status": "not_ready",
        "reasons": ["readiness check failed: redis gone"],
    }


@pytest_twisted.inlineCallbacks
def test_readiness_raising_at_once_is_not_ready():
    def broken():
        raise RuntimeError("no listeners yet")

    app = HealthApp(CollectorRegistry(), broken)
    port = reactor.listenTCP(0, Site(app.resource()), interface="127.0.0.1")
    try:
        response, body = yield fetch("http://127.0.0.1:%d/ready" % port.getHost().port)
    finally:
        yield port.stopListening()
    assert response.code == 503
    assert json.loads(body)["reasons"] == ["readiness check failed: no listeners yet"]


@pytest_twisted.inlineCallbacks
def test_metrics_in_prometheus_text(served):
    base, registry, _ = served
    frames = Counter("teltonika_frames", "Frames received", registry=registry)
    frames.inc(3)
    response, body = yield fetch(base + "/metrics")
    assert response.code == 200
    assert content_type(response).startswith("text/plain; version=")
    assert b"teltonika_frames_total 3.0\n" in body


@pytest_twisted.inlineCallbacks
def test_anything_else_is_not_found(served):
    base, _, _ = served
    for path in ["/", "/healthz", "/metrics/x", "/ready/"]:
        response, _ = yield fetch(base + path)
        assert response.code == 404, path


@pytest_twisted.inlineCallbacks
def test_other_methods_are_refused(served):
    base, _, _ = served
    for path in ["/health", "/ready", "/metrics"]:
        response, _ = yield fetch(base + path, method="POST")
        assert response.code == 405, path
