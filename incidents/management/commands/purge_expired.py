"""Anonymise closed cases whose retention period is over (incidents.retention); --dry-run
lists them, with the rule and the closure date, and changes nothing."""

from django.core.management.base import BaseCommand, CommandError

from incidents.retention import PurgeTrigger, purge_expired


def _rule(kind: str, outcome: str, months: int) -> str:
    return f"{kind or 'any kind'}/{outcome or 'any outcome'}, {months} months"


class Command(BaseCommand):
    help = (
        "Anonymise closed cases past their retention period (the rules are in the admin, "
        "Retention rules); cases under a legal hold are kept. With --dry-run, list what would "
        "be anonymised and why, and change nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be anonymised; change nothing."
        )

    def handle(self, *args, dry_run: bool, **options):
        result = purge_expired(dry_run=dry_run, trigger=PurgeTrigger.COMMAND)
        for item in result.would_anonymise:
            case, rule = item.case, item.rule
            self.stdout.write(
                f"would anonymise {case.reference} ({case.kind}, {case.outcome}): closed "
                f"{case.closed_at:%Y-%m-%d}, rule "
                f"{_rule(rule.kind, rule.outcome, rule.keep_months)}, "
                f"expired {item.expires_at:%Y-%m-%d}"
            )
        for record in result.anonymised:
            self.stdout.write(
                f"anonymised {record.case_reference} ({record.kind}, {record.outcome}): closed "
                f"{record.closed_at:%Y-%m-%d}, rule "
                f"{_rule(record.rule_kind, record.rule_outcome, record.keep_months)}; "
                f"{record.notes_removed} notes, {record.attachments_removed} attachments removed"
            )
        for item in result.held:
            self.stdout.write(
                f"kept {item.case.reference}: under a legal hold (expired "
                f"{item.expires_at:%Y-%m-%d})"
            )
        if dry_run:
            self.stdout.write(
                f"Dry run: {len(result.would_anonymise)} case(s) would be anonymised, "
                f"{len(result.held)} kept by a legal hold. Nothing was changed."
            )
        else:
            self.stdout.write(
                f"Run {result.run}: {len(result.anonymised)} case(s) anonymised, "
                f"{len(result.held)} kept by a legal hold, {len(result.failed)} failed."
            )
        if result.failed:
            raise CommandError(
                f"{len(result.failed)} case(s) could not be anonymised and will be tried again: "
                + ", ".join(result.failed)
            )
