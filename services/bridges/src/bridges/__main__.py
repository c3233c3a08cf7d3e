"""`python -m bridges`: run the bridges (HTTP API, HJ 212 TCP listener, CAP poller) until SIGTERM."""

from bridges.bootstrap import bootstrap
from onegrid.service import serve


def main() -> None:
    service = bootstrap()
    serve(service.app, service.settings)


if __name__ == "__main__":
    main()
