"""A service that does one asynchronous job every interval, for as long as it runs."""

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.logger import Logger


class PeriodicService(Service):
    """
    Calls L{run} every C{interval} seconds, the first time at start.

    The loop keeps its cadence instead of waiting on a slow run (the jobs'
    Redis commands are bounded in time), but runs never overlap: one that is
    due while the previous is still going is skipped, and logged.  A
    LoopingCall stops for good when its function raises, so a failed run is
    handed to L{failed} and the next one happens anyway.

    @ivar last_run: the Deferred of the latest run; it never fails.
    """

    log = Logger()
    job = "job"

    def __init__(self, interval, clock=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.interval = interval
        self.clock = clock
        self.last_run = None
        self._loop = None

    def run(self):
        """One run of the job; subclasses say what. May return a Deferred."""
        raise NotImplementedError

    def succeeded(self, result):
        return result

    def failed(self, failure):
        self.log.failure("{job} failed; will retry", failure, job=self.job)

    def startService(self):
        super().startService()
        self._loop = task.LoopingCall(self._run_unless_busy)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True).addErrback(self._loop_died)

    def stopService(self):
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def run_once(self):
        """Run the job now; fires with its result, or None if it failed."""
        d = defer.maybeDeferred(self.run)
        d.addCallbacks(self.succeeded, self.failed)
        self.last_run = d
        return d

    def _run_unless_busy(self):
        if self.last_run is not None and not self.last_run.called:
            self.log.warn(
                "{job} skipped: the previous run is still going", job=self.job
            )
            return
        self.run_once()

    def _loop_died(self, failure):
        self.log.failure("{job} loop stopped", failure, job=self.job)
