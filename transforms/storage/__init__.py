"""The pipeline's storage adapters: Spanner, Redis and Pub/Sub clients, and the rows and reads they serve.

No Beam here: the steps in ``transforms`` and the service in ``api`` call these modules. ``clients`` (the
process-wide clients), ``schema`` (the DDL), ``registry`` (organizations, projects, tokens),
``group_store`` (the ports the applier stores through, and their Spanner and Redis implementations),
``state_store`` (reads), ``spanner_writer`` (guarded commits, planned by ``commit_plan`` into the rows of
``spanner_rows``, with ``tag_writer`` for tags and ``mutation_buffer`` to hand rows to a transaction),
``event_cache`` (the events this process stored or read) and ``redis_quota`` (the creation quota).
"""
