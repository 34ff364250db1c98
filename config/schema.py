"""Schema operations for migrations that must not stop a live system while they run."""

from django.db import migrations


class AddIndexOnline(migrations.AddIndex):
    """AddIndex that builds its index without blocking writes on PostgreSQL (CREATE INDEX
    CONCURRENTLY, outside a transaction: reports and case views go on while it builds); an
    ordinary AddIndex anywhere else. The migration using it sets `atomic = False`.

    A run interrupted part way is not recorded, and may leave the index built or half built
    (INVALID); so the index is dropped first if it exists, and the next `migrate` builds it
    afresh."""

    atomic = False

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            name = schema_editor.quote_name(self.index.name)
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            schema_editor.add_index(model, self.index, concurrently=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, concurrently=True)


def drop_indexes_on(schema_editor, table: str, columns: list[str]) -> None:
    """Drop the plain (not unique, not primary key) indexes of `table` on exactly `columns`,
    whatever they were named; concurrently on PostgreSQL."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    concurrently = "CONCURRENTLY " if connection.vendor == "postgresql" else ""
    for name, spec in constraints.items():
        if (
            spec["index"]
            and spec["columns"] == columns
            and not spec["unique"]
            and not spec["primary_key"]
            and not spec.get("foreign_key")
        ):
            schema_editor.execute(f"DROP INDEX {concurrently}{schema_editor.quote_name(name)}")


def create_index_on(schema_editor, table: str, columns: list[str], name: str) -> None:
    """A plain index of `table` on `columns`; concurrently on PostgreSQL."""
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    quote = schema_editor.quote_name
    schema_editor.execute(
        f"CREATE INDEX {concurrently}{quote(name)} ON {quote(table)} "
        f"({', '.join(quote(c) for c in columns)})"
    )
