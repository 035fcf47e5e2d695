"""A throwaway Spanner database for a benchmark: the product's schema and the workload's three projects."""

from __future__ import annotations

import uuid

PROJECT, INSTANCE = "bench-project", "bench-instance"
# The projects ``pipeline.workload`` generates for: (project id, organization id, slug).
PROJECTS = ((1, 1, "backend"), (2, 1, "frontend"), (3, 2, "mobile"))


def create(prefix: str = "bench"):
    """Create a database with the schema and the projects registered; returns ``(database_id, handle)``."""
    from pipeline import admin
    from transforms import clients, registry

    database_id = f"{prefix}{uuid.uuid4().hex[:8]}"
    admin.create_database(PROJECT, INSTANCE, database_id)
    database = clients.spanner_database(PROJECT, INSTANCE, database_id)
    for project_id, organization_id, slug in PROJECTS:
        registry.register_project(database, project_id=project_id, organization_id=organization_id, slug=slug)
    return database_id, database


def drop(database_id: str) -> None:
    from transforms import clients

    clients.spanner_database(PROJECT, INSTANCE, database_id).drop()
    clients.forget_database(PROJECT, INSTANCE, database_id)
