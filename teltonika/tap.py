"""What the twistd plugin needs: the options and a service to run."""

from teltonika.gctuning import tune_for_throughput
from teltonika.options import Options
from teltonika.service import TeltonikaService

__all__ = ["Options", "makeService"]


def makeService(options):
    from twisted.internet import reactor

    service = TeltonikaService(options, reactor)
    # A port in use or a broken TLS key: the failure is logged; exit.
    service.accepting.addErrback(lambda _: reactor.stop())
    tune_for_throughput()
    return service
