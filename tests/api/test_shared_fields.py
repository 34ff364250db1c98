"""The report serializers share one bound set of fields (incidents.api.SharedFields) instead
of DRF's deep copy for every request; each serializer's data and errors stay its own."""

import threading

from incidents.api import ReportCreateSerializer, ReporterViewSerializer


def test_the_fields_are_made_once_per_class():
    assert ReportCreateSerializer().fields is ReportCreateSerializer(data={}).fields
    assert ReporterViewSerializer().fields is not ReportCreateSerializer().fields
    assert list(ReportCreateSerializer().fields)[:2] == ["kind", "narrative"]


def test_each_serializer_keeps_its_own_data_and_errors_across_threads():
    good = {"kind": "concern_colleague", "narrative": "Left notes.", "colleague": "B."}
    bad = {"kind": "no_such_kind", "narrative": "", "grounds": ["nope"]}
    results = {}
    start = threading.Barrier(8)

    def run(n):
        start.wait()
        for _ in range(50):
            serializer = ReportCreateSerializer(data=good if n % 2 else bad)
            valid = serializer.is_valid()
            results.setdefault(n, set()).add(
                (valid, tuple(sorted(serializer.errors)), serializer.validated_data.get("kind"))
            )

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n, seen in results.items():
        if n % 2:
            assert seen == {(True, (), "concern_colleague")}
        else:
            assert seen == {(False, ("grounds", "kind", "narrative"), None)}
