"""Runs on disk, one module per job.

* ``format``: the typed run format (``RunRecord``, ``SnapshotStats``, ...), stated field by field
  in its docstring, and the one validating reader every caller goes through;
* ``snapshots``: snapshot files (safetensors), checked whole (checksum, statistics, sizes) on open;
* ``runs``: ``Run``, ``RunWriter``, ``RunStore`` (create, list with damaged runs apart, load,
  delete, clean orphans);
* ``archive``: zip export and the guarded, streaming zip import.
"""
