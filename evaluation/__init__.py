"""Evaluation: score answers and retrieval on multi-hop QA the way the field reports them.

`metrics` holds the pure scoring functions, `harness` runs methods over a dataset, `report`
aggregates and renders tables, `compare` tests whether one run beats another.
"""
