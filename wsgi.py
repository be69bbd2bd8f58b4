"""The WSGI entry point for production: ``gunicorn wsgi:app``."""

from admin.app import create_app

app = create_app()
