"""`python -m console`: run the operations console (web page, JSON API, OTLP receiver) until SIGTERM."""

from console.bootstrap import bootstrap
from onegrid.service import serve


def main() -> None:
    service = bootstrap()
    serve(service.app, service.settings)


if __name__ == "__main__":
    main()
