"""Analysis of recorded runs: statistics, diagnostics, the tuning guide's experiments, and the
tables and series the views draw."""
