"""`python -m open311`: run the service (the GeoReport v2 API and the status loops) until SIGTERM."""

from onegrid.service import serve
from open311.bootstrap import bootstrap


def main() -> None:
    service = bootstrap()
    serve(service.app, service.settings)


if __name__ == "__main__":
    main()
