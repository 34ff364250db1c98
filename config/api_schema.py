"""Every API operation may answer with the project's structured error: the schema says so for
all of them, so no client meets an undocumented status."""

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ANSWERS = {
    "400": "The request is not valid; `fields` says why, field by field.",
    "401": "No valid credentials.",
    "403": "Refused: a session that has not given its second factor (or its CSRF token), or a "
    "token asked for by someone who must set up two-step sign-in on the web first.",
    "429": "Too many requests or sign-in attempts; see Retry-After.",
}


def document_errors(result, generator, request, public):
    if "Error" not in result.get("components", {}).get("schemas", {}):
        return result
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            answers = dict(ANSWERS)
            if "{" in path:
                answers["404"] = "No such thing, or not yours to see (the same answer)."
            for status, description in answers.items():
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": ERROR_REF}},
                    },
                )
    return result
