"""Graph nodes, one module each; `common.py` holds what they share (deps, budgets, events)."""
