"""Encrypt the report narratives and details, case notes and attachment files already stored,
with the current key.

A value that already decrypts is left as it is, so running it again changes nothing. Files are
done after the rows; if this fails part way, the files already encrypted stay so (they are not
part of the transaction) and running it again finishes the job."""

import os

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import migrations

from config.crypto import fernet

COLUMNS = (
    ("incidents_report", "narrative"),
    ("incidents_report", "details"),
    ("incidents_casenote", "text"),
)


def _is_token(value: bytes) -> bool:
    try:
        fernet().decrypt(value)
    except InvalidToken:
        return False
    return True


def _convert_columns(schema_editor, convert) -> None:
    quote = schema_editor.quote_name
    with schema_editor.connection.cursor() as cursor:
        for table, column in COLUMNS:
            cursor.execute(f"SELECT id, {quote(column)} FROM {quote(table)}")
            for row_id, value in cursor.fetchall():
                new = convert(value.encode())
                if new is not None:
                    cursor.execute(
                        f"UPDATE {quote(table)} SET {quote(column)} = %s WHERE id = %s",
                        [new.decode(), row_id],
                    )


def _convert_files(apps, convert) -> None:
    folder = settings.ATTACHMENTS_DIR
    for stored_name in apps.get_model("incidents", "Attachment").objects.values_list(
        "stored_name", flat=True
    ):
        path = folder / stored_name
        if not path.is_file():
            continue
        new = convert(path.read_bytes())
        if new is not None:
            spare = path.with_name(path.name + ".new")
            spare.write_bytes(new)
            os.replace(spare, path)


def encrypt(apps, schema_editor):
    def convert(value: bytes) -> bytes | None:
        return None if _is_token(value) else fernet().encrypt(value)

    _convert_columns(schema_editor, convert)
    _convert_files(apps, convert)


def decrypt(apps, schema_editor):
    def convert(value: bytes) -> bytes | None:
        return fernet().decrypt(value) if _is_token(value) else None

    _convert_columns(schema_editor, convert)
    _convert_files(apps, convert)


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0006_encrypt_reports_notes_attachments"),
    ]

    operations = [
        migrations.RunPython(encrypt, decrypt),
    ]
