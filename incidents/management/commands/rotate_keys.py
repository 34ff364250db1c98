"""Re-encrypt every encrypted value and attachment file with the first key in
FIELD_ENCRYPTION_KEYS, so older keys can then be removed."""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from config.crypto import EncryptedJSONField, EncryptedTextField, InvalidToken, rotate_token
from incidents.models import Attachment, CaseNote, Report

ENCRYPTED_MODELS = (Report, CaseNote)


class Command(BaseCommand):
    help = (
        "Re-encrypt report narratives and details, case notes and attachment files with the "
        "first key of FIELD_ENCRYPTION_KEYS. Safe to run again; run it after putting a new key "
        "first, and remove the old key only once it has finished."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size: int, **options):
        rows = sum(self._rotate_model(model, batch_size) for model in ENCRYPTED_MODELS)
        files = self._rotate_files(batch_size)
        self.stdout.write(f"Re-encrypted {rows} rows and {files} attachment files.")

    def _rotate_model(self, model, batch_size: int) -> int:
        """Token to token, in raw SQL: the plaintext never passes through model instances."""
        quote = connection.ops.quote_name
        table = quote(model._meta.db_table)
        columns = [
            f.column
            for f in model._meta.concrete_fields
            if isinstance(f, EncryptedTextField | EncryptedJSONField)
        ]
        select = ", ".join(quote(c) for c in columns)
        assign = ", ".join(f"{quote(c)} = %s" for c in columns)
        done, last_id = 0, 0
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    # Table and column names come from the models, quoted; values are parameters.
                    f"SELECT id, {select} FROM {table} WHERE id > %s ORDER BY id LIMIT %s",  # noqa: S608
                    [last_id, batch_size],
                )
                batch = cursor.fetchall()
                if not batch:
                    return done
                updates = []
                for row_id, *values in batch:
                    try:
                        new = [
                            None if v is None else rotate_token(v.encode()).decode() for v in values
                        ]
                    except InvalidToken:
                        raise CommandError(
                            f"{model._meta.db_table} row {row_id} cannot be decrypted with any "
                            "key in FIELD_ENCRYPTION_KEYS; nothing after it was re-encrypted."
                        ) from None
                    updates.append([*new, row_id])
                cursor.executemany(f"UPDATE {table} SET {assign} WHERE id = %s", updates)  # noqa: S608
            done += len(batch)
            last_id = batch[-1][0]

    def _rotate_files(self, batch_size: int) -> int:
        folder = settings.ATTACHMENTS_DIR
        done = 0
        names = Attachment.objects.order_by("id").values_list("id", "stored_name")
        for attachment_id, stored_name in names.iterator(chunk_size=batch_size):
            path = folder / stored_name
            if not path.is_file():
                self.stderr.write(f"Attachment {attachment_id}: file missing, skipped.")
                continue
            try:
                token = rotate_token(path.read_bytes())
            except InvalidToken:
                raise CommandError(
                    f"Attachment {attachment_id} cannot be decrypted with any key in "
                    "FIELD_ENCRYPTION_KEYS."
                ) from None
            spare = path.with_name(path.name + ".rotating")
            spare.write_bytes(token)
            os.replace(spare, path)  # a reader sees the old token or the new, never half
            done += 1
        return done
