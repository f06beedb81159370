"""The HTTP edge: authentication, sessions, hosts, middleware, the OpenAPI document, route aliases and upload bodies."""
