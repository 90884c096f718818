"""The internal HTTP endpoint: liveness, readiness and metrics, nothing else.

Orchestrators and Prometheus poll it on loopback; devices never see it.
Readiness is a question the caller defines (is Redis answering, are the
listeners up?), so this module only turns its answer into HTTP.
"""

import json

from klein import Klein
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from twisted.internet import defer
from twisted.logger import Logger


class HealthApp:
    """
    C{registry} is the L{prometheus_client.CollectorRegistry} to expose;
    C{readiness} a zero-argument callable returning a Deferred that fires
    with a list of problems (strings), empty when the service is ready.
    """

    app = Klein()
    log = Logger()

    def __init__(self, registry, readiness):
        self.registry = registry
        self.readiness = readiness

    def resource(self):
        """A twisted.web resource serving these routes, for a Site."""
        return self.app.resource()

    @app.route("/health", methods=["GET"])
    def health(self, request):
        """The process is alive and its reactor turns: nothing else is asked."""
        return _json(request, 200, {"status": "ok"})

    @app.route("/ready", methods=["GET"])
    def ready(self, request):
        d = defer.maybeDeferred(self.readiness)
        d.addErrback(self._readinessFailed)
        d.addCallback(self._answerReadiness, request)
        return d

    def _readinessFailed(self, failure):
        """A readiness check that breaks is itself a reason not to be ready."""
        self.log.failure("Readiness check failed", failure)
        return ["readiness check failed: %s" % (failure.getErrorMessage(),)]

    def _answerReadiness(self, problems, request):
        if problems:
            body = {"status": "not_ready", "reasons": list(problems)}
            return _json(request, 503, body)
        return _json(request, 200, {"status": "ready"})

    @app.route("/metrics", methods=["GET"])
    def metrics(self, request):
        """
        Rendered in the reactor thread: prometheus_client's own Twisted
        resource defers to a thread pool, which hung the tests.
        """
        request.setHeader("Content-Type", CONTENT_TYPE_LATEST)
        return generate_latest(self.registry)


def _json(request, code, body):
    request.setResponseCode(code)
    request.setHeader("Content-Type", "application/json")
    return json.dumps(body).encode("utf-8")
