"""Builds the OpenAPI 3.1 document from the routes and their ``@operation`` docs."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from turnout_common.web import QueryArg

_PARAM = re.compile(r"<(?:[a-z_]+:)?([a-zA-Z_][a-zA-Z0-9_]*)>")

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
        }
    },
}


def _query_param(name: str, spec: str | QueryArg) -> dict[str, Any]:
    description, schema = (spec.description, spec.schema) if isinstance(spec, QueryArg) else (spec, {"type": "string"})
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def flask_rule_to_path(rule: str) -> str:
    return _PARAM.sub(r"{\1}", rule)


def build_openapi(app: Flask, *, title: str, version: str, description: str = "") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        view = app.view_functions[rule.endpoint]
        doc = getattr(view, "openapi", None)
        path = flask_rule_to_path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op: dict[str, Any] = {"operationId": f"{rule.endpoint}.{method.lower()}"}
            if doc is None:
                op["summary"] = "(undocumented)"
                op["responses"] = {"200": {"description": "OK"}}
            else:
                op["summary"] = doc.summary
                if doc.tags:
                    op["tags"] = doc.tags
                # A page's errors are pages; the framework's own (405, 413) stay JSON.
                contents = (doc.content,) if isinstance(doc.content, str) else doc.content
                error_content: dict[str, Any] = {"application/json": {"schema": ERROR_SCHEMA}}
                if "text/html" in contents:
                    error_content = {"text/html": {}, **error_content}
                responses: dict[str, Any] = {}
                for status, text in doc.responses.items():
                    entry: dict[str, Any] = {"description": text}
                    if status >= 400:
                        entry["content"] = error_content
                    elif status != 204:
                        entry["content"] = {content: {} for content in contents}
                    responses[str(status)] = entry

                # What every such route may answer besides its own statuses.
                implied: list[tuple[str, str]] = []
                if doc.body is not None:
                    op["requestBody"] = {
                        "required": True,
                        "content": {"application/json": {"schema": doc.body}},
                    }
                    implied += [
                        ("400", "invalid body"),
                        ("413", "body larger than the service's limit"),
                        ("415", "body not sent as application/json"),
                    ]
                if doc.query:
                    implied.append(("400", "invalid query argument"))
                if _PARAM.search(rule.rule):
                    implied.append(("404", "no such resource in your organization"))
                if doc.auth is not None:
                    op["security"] = [{"bearer": []}]
                    op["x-permission"] = doc.auth
                    implied += [("401", "not signed in"), ("403", "not allowed")]
                    if "text/html" in contents:  # a signed-out browser is sent to sign in
                        responses.setdefault("302", {"description": "not signed in: to the sign-in page"})
                for status_text, text in implied:
                    responses.setdefault(status_text, {"description": text, "content": error_content})
                op["responses"] = responses
                params = [_query_param(name, spec) for name, spec in doc.query.items()]
                if params:
                    op["parameters"] = params
            path_params = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in _PARAM.findall(rule.rule)
            ]
            if path_params:
                op["parameters"] = path_params + op.get("parameters", [])
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A session token from POST /api/v1/auth/login on checkin "
                    "(also accepted as the turnout_session cookie).",
                }
            },
            "schemas": {"Error": ERROR_SCHEMA},
        },
    }
