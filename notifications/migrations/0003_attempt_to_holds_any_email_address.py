"""An attempt's `to` holds the person's email address for the email channel, which may be as
long as a User's email (254), not only a phone number. Widening a varchar is a change to the
catalogue alone on PostgreSQL: no table rewrite, no long lock."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0002_channels_pages_preferences"),
    ]

    operations = [
        migrations.AlterField(
            model_name="notificationattempt",
            name="to",
            field=models.CharField(blank=True, max_length=254),
        ),
    ]
