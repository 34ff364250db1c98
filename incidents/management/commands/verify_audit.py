"""Walk every case's timeline and access-log hash chains; name the first broken link."""

from django.core.management.base import BaseCommand, CommandError

from incidents.audit import verify_chains
from incidents.models import Case


class Command(BaseCommand):
    help = (
        "Check the hash chains of the case timeline and the access log. Prints OK, or the "
        "first broken link of each table and exits non-zero."
    )

    def handle(self, *args, **options):
        checked, broken = verify_chains()
        if not broken:
            self.stdout.write(f"OK: {checked} rows in unbroken chains.")
            return
        references = dict(
            Case.objects.filter(id__in={b.case_id for b in broken}).values_list("id", "reference")
        )
        for link in broken:
            reference = references.get(link.case_id, f"case id {link.case_id}")
            self.stderr.write(
                f"BROKEN: {link.table}, case {reference}, row {link.row_id} {link.what}: "
                f"expected {link.expected}, found {link.found}"
            )
        raise CommandError(f"{len(broken)} broken chain(s); {checked} rows checked before them.")
