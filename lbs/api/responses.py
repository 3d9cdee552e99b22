"""What an operation answers, declared once: the OpenAPI document and the bytes served
both come from the models an operation declares.

Every view is routed with ``responses={status: Model | Media | None}``, and the app runs
serve() on what the view returns (flask-openapi3's validate_response_callback):

- a body (a dict or a model instance) is validated by the model declared for its status
  and written by that model's serialiser: a field the model lacks, or a value of the wrong
  type, is a 500 that the test suite meets, never a silent drift from the document;
- Media(...) declares more than one media type for a status, each with its model (JSON
  and GeoJSON of the same page), or None for a body that is not JSON (an image, a tile,
  Prometheus text); a view returns such a body as a Response of that media type, and a
  media type it did not declare is a 500 too;
- a status the operation does not declare is a 500.

Errors do not pass here: they are raised, and answered as problem+json (lbs.api.problems).
The one body encoded by hand is the cluster array of GET /v1/merchants (lbs.services.
merchant_map), written as text for speed; its shape is checked against its model by the
suite (schemathesis on the live app).
"""

from __future__ import annotations

from typing import Any, ClassVar

from flask import Response, request
from flask_openapi3.utils import get_model_schema
from pydantic import BaseModel, ConfigDict
from werkzeug.wrappers import Response as ResponseBase

JSON = "application/json"


class Out(BaseModel):
    """Base of response models: a field the model does not declare is an error, not sent."""

    model_config = ConfigDict(extra="forbid")


class Media(dict[str, Any]):
    """An OpenAPI Response object for one status with several media types.

    ``models`` maps each media type to the model its body is serialised through, or to
    None for a body that is not JSON (described by ``schemas``, e.g. binary). ``schemas``
    may also show more than the model for a media type (a body a view encodes itself),
    naming the models it refers to in ``also``."""

    declared: ClassVar[list[Media]] = []

    def __init__(
        self,
        description: str,
        models: dict[str, type[BaseModel] | None],
        schemas: dict[str, Any] | None = None,
        also: tuple[type[BaseModel], ...] = (),
    ) -> None:
        content = {
            media: {"schema": (schemas or {}).get(media) or ref(model)} for media, model in models.items()
        }
        super().__init__(description=description, content=content)
        self.models = models
        self.also = also
        Media.declared.append(self)


def ref(model: type[BaseModel] | None) -> dict[str, Any]:
    if model is None:
        return {"type": "string", "format": "binary"}
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def serve(returned: Any, responses: dict[Any, Any]) -> Any:
    """What a view returned, as the declared model serialises it (see the module's docstring)."""
    if isinstance(returned, ResponseBase):  # built by the view: its status and type declared
        status, mimetype = returned.status_code, returned.mimetype
        declared = _declared(responses, status)
        if declared is not None and not (isinstance(declared, Media) and mimetype in declared.models):
            raise TypeError(f"{request.endpoint}: {status} {mimetype} is not declared")
        return returned
    body, status, headers = _unpack(returned)
    declared = _declared(responses, status)
    if declared is None:  # no body: 204
        return Response(status=status, headers=headers)
    mimetype = JSON
    if isinstance(declared, Media):
        mimetype = headers.pop("Content-Type", JSON)
        declared = declared.models.get(mimetype)
    if not (isinstance(declared, type) and issubclass(declared, BaseModel)):
        raise TypeError(f"{request.endpoint}: {status} {mimetype} is not declared with a model")
    model = body if isinstance(body, declared) else declared.model_validate(body)
    text = model.model_dump_json(exclude_unset=True)
    return Response(text, status=status, headers=headers, mimetype=mimetype)


def _declared(responses: dict[Any, Any], status: int) -> Any:
    if status not in responses:
        raise TypeError(f"{request.endpoint}: status {status} is not declared")
    return responses[status]


def _unpack(returned: Any) -> tuple[Any, int, dict[str, str]]:
    if not isinstance(returned, tuple):
        return returned, 200, {}
    if len(returned) == 2:
        return returned[0], int(returned[1]), {}
    return returned[0], int(returned[1]), dict(returned[2])


def media_schemas() -> dict[str, Any]:
    """The component schemas of the models Media declared (flask-openapi3 adds those of
    plain model responses itself)."""
    schemas: dict[str, Any] = {}
    for media in Media.declared:
        for model in (*media.models.values(), *media.also):
            if model is None:
                continue
            schema = get_model_schema(model, mode="serialization")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
    return schemas
