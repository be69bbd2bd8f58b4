"""Policies: read a rule as YAML or JSON, validate a rule, create or update drafts (HR).

The rule's checks are the rule book's (engine.rulebook), drafts are engine.authoring's:
the same as the back office's editor and ``laurel rules``.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from api import schemas as s
from api.core import ApiProblem, caller, db, idempotent, json_body, listing, may, page
from engine import authoring, rulebook
from engine.errors import RuleError
from engine.models import Rule

rules = Blueprint("api_rules", __name__, url_prefix="/rules",
                  description="Policies: read (YAML or JSON), validate, drafts for hr_admin")
BLUEPRINTS = [rules]
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
RULE_BODY = {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "additionalProperties": True}},
    "application/yaml": {"schema": {"type": "string"}}}}


def _document() -> dict[str, Any]:
    """The rule in the body: YAML when the Content-Type says so, else JSON."""
    if request.mimetype in YAML_TYPES:
        try:
            text = request.get_data().decode("utf-8")
        except UnicodeDecodeError:
            raise ApiProblem(400, "the YAML body is not UTF-8 text") from None
        return rulebook.read_yaml(text, "rule")
    doc = json_body()
    if not isinstance(doc, dict):
        raise ApiProblem(422, "the body is one rule: an object (or YAML with Content-Type "
                         "application/yaml)", "invalid")
    return doc


def _as(rule: Rule, fmt: str) -> Any:
    if fmt == "yaml":
        return current_app.response_class(rulebook.dump_yaml(rulebook.to_document(rule)),
                                          content_type="application/yaml; charset=utf-8")
    return s.RuleSchema().dump(rule)


@rules.route("")
class Rules(MethodView):
    @rules.arguments(s.RuleQuery, location="query")
    @rules.response(200, s.page_of(s.RuleSchema, "RulePage"))
    def get(self, args: dict[str, Any]) -> Any:
        """Every version of every rule; filter by status, kind and rule key."""
        may("read", "rules")
        query = select(Rule)
        if args.get("status"):
            query = query.where(Rule.status == args["status"])
        if args.get("kind"):
            query = query.where(Rule.kind == args["kind"])
        if args.get("rule"):
            query = query.where(Rule.key == args["rule"])
        rows, cursor = page(query, Rule, ("id", "key"), args.get("sort"), args.get("cursor"),
                            args["limit"], default="key")
        return listing(rows, cursor)


@rules.route("/<key>/versions/<int:version>")
class Version(MethodView):
    @rules.arguments(s.RuleFormat, location="query")
    @rules.response(200, s.RuleSchema)
    @rules.alt_response(200, description="format=yaml: the rule as its file holds it",
                        content_type="application/yaml", success=True)
    def get(self, args: dict[str, Any], key: str, version: int) -> Any:
        """One version of a rule, as JSON or (format=yaml) as the rule file holds it."""
        may("read", "rules")
        return _as(authoring.get_version(db(), key, version), args["format"])


@rules.route("/validate")
class Validate(MethodView):
    @rules.doc(requestBody=RULE_BODY)
    @rules.response(200, s.ValidationSchema)
    def post(self) -> Any:
        """Check a rule (JSON, or YAML with its Content-Type) with the rule book's checks;
        nothing is stored. The answer says whether it is valid, and where it is not."""
        may("read", "rules")
        try:
            doc = _document()
            rulebook.validate_for_session(db(), doc, "rule")
        except RuleError as exc:
            return {"valid": False, "key": None, "errors": [
                {"field": exc.field, "row": exc.row, "reason": exc.reason}]}
        return {"valid": True, "key": doc.get("key"), "errors": []}


@rules.route("/drafts")
class Drafts(MethodView):
    @rules.doc(requestBody=RULE_BODY)
    @rules.alt_response(201, schema=s.RuleSchema, success=True,
                        description="A new draft version")
    @rules.alt_response(200, schema=s.RuleSchema, success=True,
                        description="Nothing changed: the newest version")
    @idempotent
    def post(self) -> Any:
        """Create or update a rule's draft (hr_admin): a new draft version unless nothing
        changed. Refused whole (422) naming the field and row."""
        may("write", "rules")
        rule, created = authoring.save_draft(db(), _document(), caller().email)
        return s.RuleSchema().dump(rule), 201 if created else 200
