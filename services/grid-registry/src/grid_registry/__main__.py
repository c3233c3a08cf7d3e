"""`python -m grid_registry`: run the service (HTTP API and consumer loops) until SIGTERM."""

from onegrid.service import serve

from grid_registry.bootstrap import bootstrap


def main() -> None:
    app, settings = bootstrap()
    serve(app, settings)


if __name__ == "__main__":
    main()
