"""A page keeps the path to what it is about, so its email links there (the case) rather than
to the home page. Adding a column with a constant default is a change to the catalogue alone on
PostgreSQL 11 and later: no table rewrite."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0003_attempt_to_holds_any_email_address"),
    ]

    operations = [
        migrations.AddField(
            model_name="pagerequest",
            name="link",
            field=models.CharField(blank=True, db_default="", default="", max_length=200),
        ),
    ]
