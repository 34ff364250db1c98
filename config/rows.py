"""New rows of several models in one statement.

A report opens a case with four tables' rows. Saved one model at a time that is a round trip
and an ORM insert each, between a BEGIN and a COMMIT: most of a report's time on the web
server. On PostgreSQL, rows whose foreign keys are already known (the case's id is drawn from
its sequence first) go in one INSERT with data-modifying WITH clauses instead: one round trip,
and one statement, so all or nothing even outside a transaction. Constraints are checked as
for any insert (Django's foreign keys are deferred to the end of the statement's transaction).
Elsewhere (the embedded SQLite default) each model's rows are inserted in turn, in a
transaction.

Values are prepared by each field as the ORM prepares them (`pre_save`, `get_db_prep_save`),
so encrypted fields are encrypted, JSON adapted and `auto_now_add` filled in; an empty value
is written as NULL. A row whose primary key is not set gets it from the database and is not
told it (nothing here reads it back); one that is set is marked saved.
"""

from django.db import connection, models, transaction


def _columns(model: type[models.Model], with_pk: bool) -> list[models.Field]:
    pk = model._meta.pk
    return [f for f in model._meta.concrete_fields if with_pk or f is not pk]


def _insert(rows: list[models.Model]) -> tuple[str, list]:
    model = type(rows[0])
    with_pk = rows[0].pk is not None
    if any(type(row) is not model or (row.pk is not None) != with_pk for row in rows):
        raise ValueError("One group holds rows of one model, all with or all without a key.")
    fields = _columns(model, with_pk)
    quote = connection.ops.quote_name
    values, params = [], []
    for row in rows:
        row._prepare_related_fields_for_save(operation_name="insert_together")
        marks = []
        for field in fields:
            value = field.get_db_prep_save(field.pre_save(row, add=True), connection)
            if value is None:
                # Written out, not a parameter: a new case's many empty columns would
                # otherwise take psycopg past the parameters it keeps a statement's
                # conversion for (50), and it would convert the statement afresh each time.
                marks.append("NULL")
            else:
                marks.append("%s")
                params.append(value)
        values.append(f"({', '.join(marks)})")
    columns = ", ".join(quote(f.column) for f in fields)
    # Names from the models' own metadata only; every value is a parameter (or NULL).
    table = quote(model._meta.db_table)
    sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join(values)}"  # noqa: S608
    return sql, params


def insert_together(*groups: list[models.Model]) -> None:
    """Insert each group's rows (one model a group; empty groups are skipped), all or nothing.
    Within a group, rows the database gives ids to get them in list order."""
    groups = [group for group in groups if group]
    if not groups:
        return
    if connection.vendor != "postgresql":
        with transaction.atomic():
            for group in groups:
                type(group[0]).objects.bulk_create(group)
        return
    parts = [_insert(group) for group in groups]
    clauses = [f"i{n} AS ({sql})" for n, (sql, _params) in enumerate(parts[:-1])]
    sql = (f"WITH {', '.join(clauses)} " if clauses else "") + parts[-1][0]
    params = [p for _sql, group_params in parts for p in group_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    for group in groups:
        for row in group:
            if row.pk is not None:
                row._state.adding, row._state.db = False, connection.alias
