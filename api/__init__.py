"""The issue index: list, search, bulk update and bulk delete of groups, in the shape of Sentry's issue API.

Layout: ``query`` (the search language), ``cursor`` (keyset cursors), ``search`` (index range plans and their
execution over Spanner), ``directory`` (organizations, projects and tokens), ``serializers`` (Sentry's JSON),
``bulk`` (status-change messages for bulk update and delete), ``service`` (the operations, shared by the HTTP
service and the command line), ``auth`` and ``app`` (the HTTP service).
"""
