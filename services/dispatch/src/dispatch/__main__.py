"""`python -m dispatch`: run the service (HTTP API and consumer loops) until SIGTERM."""

from onegrid.service import serve

from dispatch.bootstrap import bootstrap


def main() -> None:
    app, settings = bootstrap()
    serve(app, settings)


if __name__ == "__main__":
    main()
