"""Every store operation, written once for SQLite and PostgreSQL, without I/O.

An operation is a function ``op(d: Dialect, ...)`` returning a generator that yields queries
and receives their rows (``rows = yield from fetch(sql, ...)``; see ``_sql.py``) and returns
its result; a driver runs it in one transaction. SQL uses numbered parameters (``$1``). Where
the databases differ, call the dialect's hook (``dialect.py``) rather than branching on it.

To add an operation: write it in the module of its subject, declare it on ``base.Store``, and
add the one-line method that runs it to ``_store.SQLStore``; the contract suite in
``tests/store`` then runs it on both databases.
"""
