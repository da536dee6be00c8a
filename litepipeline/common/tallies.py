"""Counters and histograms kept as plain numbers, made Prometheus metric families when scraped.

prometheus_client itself is imported at the first scrape (it is ~2 MB of a node's memory).

prometheus_client's ``Counter`` and ``Histogram`` take a lock and run checks on every
update, as they may be shared by threads: ~1 µs an increment and a few an observation.
These are only touched on the event loop (updates and scrapes alike), where a dict
increment and a ``bisect`` are all an event needs. ``bench/metrics_bench.py`` measures both.
"""
from __future__ import annotations

import math
from bisect import bisect_left
from typing import Any, Iterator, Sequence



class Tally:
    """A counter by label values; ``name`` without ``_total`` (the exposition adds it)."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = list(labels)
        self.values: dict[tuple, float] = {} if labels else {(): 0}

    def inc(self, *labels: str) -> None:
        """Count one for these label values (one per label name, in order)."""
        self.values[labels] = self.values.get(labels, 0) + 1

    def family(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for key, value in sorted(self.values.items()):
            family.add_metric(list(key), value)
        return family


class Buckets:
    """A histogram by label values: per series, a count per bucket (not cumulative) and the sum."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float], labels: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = list(labels)
        self.bounds = tuple(float(b) for b in buckets)
        if list(self.bounds) != sorted(set(self.bounds)) or not self.bounds:
            raise ValueError(f"histogram {name}: buckets must be increasing, got {buckets!r}")
        # label values -> [count of each bucket..., count above the last bound, sum]
        self.series: dict[tuple, list] = {} if labels else {(): self._empty()}

    def _empty(self) -> list:
        return [0] * (len(self.bounds) + 1) + [0.0]

    def observe(self, value: float, *labels: str) -> None:
        """Record ``value`` for these label values (Prometheus buckets hold ``value <= le``)."""
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = self._empty()
        series[bisect_left(self.bounds, value)] += 1
        series[-1] += value

    def family(self) -> Any:
        from prometheus_client.core import HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        edges = [floatToGoString(b) for b in (*self.bounds, math.inf)]
        for key, series in sorted(self.series.items()):
            total = 0
            cumulative = []
            for edge, count in zip(edges, series):
                total += count
                cumulative.append((edge, total))
            family.add_metric(list(key), cumulative, sum_value=series[-1])
        return family


class TallyCollector:
    """Exposes :class:`Tally` and :class:`Buckets` objects in a registry (a registry takes any
    object with ``collect``)."""

    def __init__(self, *metrics: object) -> None:
        self.metrics = list(metrics)

    def describe(self) -> list:
        return []   # collected only on scrape, never at registration

    def collect(self) -> Iterator[object]:
        for metric in self.metrics:
            yield metric.family()
