"""Server-rendered pages (Jinja2 + a little htmx) over the same services as the API."""
