"""Benchmarks: how close each hot path comes to its ceiling, measured side by side.

``python -m bench`` runs every benchmark several times and writes ``docs/benchmarks.md``;
``python -m bench --quick`` is a short smoke run that writes nothing.  One module per
benchmark (:mod:`bench.publish`, :mod:`bench.lateness`, :mod:`bench.email_fanout`,
:mod:`bench.metrics_ingest`, :mod:`bench.reports`, :mod:`bench.planning`,
:mod:`bench.subscriber_import`); each starts and
stops what it needs -- its own PostgreSQL database, its own Redis on a free port, its own
sandboxes -- and measures its baseline in the same run.
"""
