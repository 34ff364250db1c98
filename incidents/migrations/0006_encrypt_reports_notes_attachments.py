"""Report narratives and details and case notes become encrypted fields (config.crypto).

The columns stay text (details turns from jsonb into text); the values already there are
encrypted by the next migration, in its own transaction."""

from django.db import migrations

import config.crypto


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0005_audit_hash_chains"),
    ]

    operations = [
        migrations.AlterField(
            model_name="casenote",
            name="text",
            field=config.crypto.EncryptedTextField(verbose_name="note"),
        ),
        migrations.AlterField(
            model_name="report",
            name="details",
            field=config.crypto.EncryptedJSONField(
                blank=True, default=dict, verbose_name="details"
            ),
        ),
        migrations.AlterField(
            model_name="report",
            name="narrative",
            field=config.crypto.EncryptedTextField(verbose_name="what happened"),
        ),
    ]
