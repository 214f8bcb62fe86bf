"""The optional read replica (`ANALYTICS_DATABASE_URL`): dashboards read the analytics tables there, and the build's
aggregate SELECTs over other apps' tables run there (see `analytics.services.source_alias`). Every write goes to the
primary, and migrations run only there. Installed by settings only when the replica is configured."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS

REPLICA = "analytics"


class AnalyticsReplicaRouter:
    def db_for_read(self, model, **hints):
        # Fill states are read before writes (and locked): they stay on the primary. Everything else of this app
        # is derived data whose replication lag the dashboards can live with.
        if model._meta.app_label == "analytics" and model._meta.model_name != "fillstate":
            return REPLICA
        return None

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica is a copy of the primary: objects from either may relate

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS
