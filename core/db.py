"""Database helpers the apps share."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Sum


class DecimalSum(Sum):
    """SUM of a DecimalField that is exact on every backend.

    SQLite keeps decimals as binary floats, so a plain SUM drifts (0.01 added up comes back as 1.20999999999999, not
    1.21) and Django does not round aggregates back. On SQLite the values are summed as integers scaled by the
    field's decimal places and turned back into a Decimal here; PostgreSQL sums NUMERIC exactly already.
    """

    def as_sqlite(self, compiler, connection, **extra_context):
        scale = 10**self.output_field.decimal_places
        scaled = self.copy()
        # Set on the instance, not passed as a keyword: Aggregate.as_sql wraps self.template when a filter is given.
        scaled.template = f"%(function)s(%(distinct)sCAST(ROUND(%(expressions)s * {scale}) AS INTEGER))"
        return scaled.as_sql(compiler, connection, **extra_context)

    def get_db_converters(self, connection):
        if connection.vendor != "sqlite":
            return super().get_db_converters(connection)
        places = self.output_field.decimal_places

        def scaled(value, expression, conn):
            return None if value is None else Decimal(int(value)).scaleb(-places)

        return [scaled]
