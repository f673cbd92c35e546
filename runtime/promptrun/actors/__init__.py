"""The one actor: the log shipper (``shipper.py``), which owns the write-ahead spool
(``_spool.py``) and ships from it in a loop of its own (``_delivery.py``: batches, or one
request per record). Everything else in the runtime is a plain object guarded by the loop."""
