"""The rota engine: from layers and overrides to who is on call when. Pure functions on plain
data, no database, so every rule can be tested alone and by property.

Every rule is local wall-clock time in the zone given (Europe/London). A handover is the local
time `start + k × every` (days or hours), made an instant with zoneinfo's first reading (fold 0):

- spring forward: a handover in the missing hour (01:00–01:59 in London) happens once, at the
  instant the clock jumps past it; an hourly handover that lands on the same instant as the next
  one gives an empty turn, which is dropped;
- autumn back: a handover in the repeated hour happens once, at its first occurrence; the hour
  is covered once, by whoever is on then, neither doubled nor lost.

A turn runs from one handover to the next, so turns never overlap and never leave a hole. A
layer limited to a window (office hours, out of hours) keeps only the part of each turn inside
it. Where layers overlap, the higher priority wins; an override wins over every layer, and of
two overrides the one made later wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

OFFICE_DAYS = frozenset(range(5))  # Monday to Friday
OFFICE_OPENS = time(9, 0)
OFFICE_CLOSES = time(17, 0)

ALWAYS = "always"
OFFICE_HOURS = "office_hours"
OUT_OF_HOURS = "out_of_hours"


@dataclass(frozen=True)
class LayerPlan:
    id: int
    name: str
    priority: int
    start_date: date
    handoff_time: time
    every: int
    unit: str  # "days" or "hours"
    window: str
    people: Sequence[Any]  # in turn order; anything with a `pk`


@dataclass(frozen=True)
class OverridePlan:
    id: int
    person: Any
    starts_at: datetime
    ends_at: datetime


@dataclass
class Shift:
    """One person on call from `start` to `end` (UTC, end excluded)."""

    start: datetime
    end: datetime
    person: Any
    source: str  # the layer's name, or "override"
    is_override: bool = False
    layer_id: int | None = None
    override_ids: list[int] = field(default_factory=list)


def to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall-clock time as a UTC instant; a missing or repeated time takes its
    first reading (fold 0)."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _step(layer: LayerPlan) -> timedelta:
    return timedelta(hours=layer.every) if layer.unit == "hours" else timedelta(days=layer.every)


def handoff(layer: LayerPlan, k: int, zone: ZoneInfo) -> datetime:
    """The instant of the layer's k-th handover (k = 0 is the first)."""
    anchor = datetime.combine(layer.start_date, layer.handoff_time)
    return to_utc(anchor + k * _step(layer), zone)


def turns(
    layer: LayerPlan, start: datetime, end: datetime, zone: ZoneInfo
) -> list[tuple[datetime, datetime, Any]]:
    """The layer's turns within [start, end), before any window: (from, to, person)."""
    people = list(layer.people)
    if not people or start >= end:
        return []
    anchor = datetime.combine(layer.start_date, layer.handoff_time)
    local_start = start.astimezone(zone).replace(tzinfo=None)
    k = max(0, (local_start - anchor) // _step(layer) - 1)
    result = []
    begins = handoff(layer, k, zone)
    while begins < end:
        ends = handoff(layer, k + 1, zone)
        if ends > begins and ends > start:
            result.append((max(begins, start), min(ends, end), people[k % len(people)]))
        begins = ends
        k += 1
    return result


def window_spans(
    window: str, start: datetime, end: datetime, zone: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) inside a window."""
    if start >= end:
        return []
    if window == ALWAYS:
        return [(start, end)]
    office = []
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    while day <= last:
        if day.weekday() in OFFICE_DAYS:
            opens = to_utc(datetime.combine(day, OFFICE_OPENS), zone)
            closes = to_utc(datetime.combine(day, OFFICE_CLOSES), zone)
            if opens < end and closes > start:
                office.append((max(opens, start), min(closes, end)))
        day += timedelta(days=1)
    if window == OFFICE_HOURS:
        return office
    rest, cursor = [], start
    for opens, closes in office:
        if opens > cursor:
            rest.append((cursor, opens))
        cursor = max(cursor, closes)
    if cursor < end:
        rest.append((cursor, end))
    return rest


def layer_shifts(
    layer: LayerPlan, start: datetime, end: datetime, zone: ZoneInfo
) -> list[tuple[datetime, datetime, Any]]:
    """The layer's turns cut to its window: sorted, never overlapping."""
    spans = window_spans(layer.window, start, end, zone)
    result, i = [], 0
    for t_start, t_end, person in turns(layer, start, end, zone):
        while i < len(spans) and spans[i][1] <= t_start:
            i += 1
        j = i
        while j < len(spans) and spans[j][0] < t_end:
            s, e = max(spans[j][0], t_start), min(spans[j][1], t_end)
            if s < e:
                result.append((s, e, person))
            j += 1
    return result


def resolve(
    layers: Sequence[LayerPlan],
    overrides: Sequence[OverridePlan],
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
) -> list[Shift]:
    """The final shifts in [start, end): overrides over layers, higher layers over lower.
    Consecutive pieces with the same person join into one shift."""
    if start >= end:
        return []
    ordered = sorted(layers, key=lambda layer: (-layer.priority, layer.id))
    per_layer = [layer_shifts(layer, start, end, zone) for layer in ordered]
    live_overrides = sorted(
        (o for o in overrides if o.ends_at > start and o.starts_at < end),
        key=lambda o: o.id,
        reverse=True,  # the later made first: it wins
    )
    bounds = {start, end}
    for shifts in per_layer:
        for s, e, _person in shifts:
            bounds.update((s, e))
    for o in live_overrides:
        bounds.update((max(o.starts_at, start), min(o.ends_at, end)))
    edges = sorted(bounds)
    cursors = [0] * len(per_layer)
    result: list[Shift] = []
    for left, right in zip(edges, edges[1:], strict=False):
        piece = None
        for o in live_overrides:
            if o.starts_at <= left < o.ends_at:
                piece = Shift(left, right, o.person, "override", True, None, [o.id])
                break
        for n, shifts in enumerate(per_layer):
            while cursors[n] < len(shifts) and shifts[cursors[n]][1] <= left:
                cursors[n] += 1
            if piece is None and cursors[n] < len(shifts) and shifts[cursors[n]][0] <= left:
                layer = ordered[n]
                piece = Shift(left, right, shifts[cursors[n]][2], layer.name, False, layer.id)
        if piece is None:
            continue
        last = result[-1] if result else None
        if last and last.end == piece.start and last.person.pk == piece.person.pk:
            last.end = piece.end
            last.is_override = last.is_override or piece.is_override
            for oid in piece.override_ids:
                if oid not in last.override_ids:
                    last.override_ids.append(oid)
        else:
            result.append(piece)
    return result


def gaps(
    shifts: Sequence[Shift], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) that no shift covers."""
    holes, cursor = [], start
    for shift in shifts:
        if shift.start > cursor:
            holes.append((cursor, min(shift.start, end)))
        cursor = max(cursor, shift.end)
    if cursor < end:
        holes.append((cursor, end))
    return [(s, e) for s, e in holes if s < e]
