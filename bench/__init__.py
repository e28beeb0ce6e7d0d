"""Benchmarks for cardpos (``make bench``); never collected by pytest.

Each ``bench/bench_<area>.py`` exposes ``run(quick: bool = False) -> list[dict]`` with rows of
``figure, value, unit, baseline, baseline_label, ratio, target, passed``; the baseline is measured in the same run.
"""
