"""The JSON API: thin routes over the service modules; its OpenAPI is the reference."""
