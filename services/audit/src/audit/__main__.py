"""`python -m audit`: run the service (HTTP API and consumer loops) until SIGTERM."""

from audit.bootstrap import bootstrap
from onegrid.service import serve


def main() -> None:
    service = bootstrap()
    serve(service.app, service.settings)


if __name__ == "__main__":
    main()
