"""The one gunicorn entry point."""

from lbs.app import create_app

app = create_app()
