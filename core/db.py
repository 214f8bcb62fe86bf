"""Database helpers the apps share."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.db.models import Model, Sum


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


def insert_unless_taken(instance: Model, *, unique: tuple[str, ...]) -> bool:
    """INSERT a new model instance unless a row with the same values in `unique` (the fields of one of its unique
    constraints) exists already. True when inserted: the instance then has its primary key, as after `save()`.

    One statement (`ON CONFLICT (...) DO NOTHING RETURNING`, PostgreSQL and SQLite >= 3.35): no savepoint and no
    IntegrityError to catch when the key is taken, so it works alike in and out of a caller's transaction. The SQL is
    built from the model's own table and column names only; the values go as parameters. No save signals are sent.
    """
    connection = transaction.get_connection()
    key = (type(instance), unique, connection.vendor)
    if key not in _INSERT_SQL:  # built once per process: a webhook door runs it on every request
        _INSERT_SQL[key] = _insert_unless_taken_sql(type(instance), unique, connection.ops.quote_name)
    sql, fields = _INSERT_SQL[key]
    with connection.cursor() as cursor:
        cursor.execute(sql, [f.get_db_prep_save(f.pre_save(instance, add=True), connection) for f in fields])
        row = cursor.fetchone()
    if row is None:
        return False
    instance.pk = row[0]
    instance._state.adding, instance._state.db = False, connection.alias
    return True


_INSERT_SQL: dict[tuple, tuple[str, list]] = {}


def _insert_unless_taken_sql(model: type[Model], unique: tuple[str, ...], quote) -> tuple[str, list]:
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key and not f.generated]  # the database fills those
    columns = ", ".join(quote(f.column) for f in fields)
    conflict = ", ".join(quote(meta.get_field(name).column) for name in unique)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))}) "  # noqa: S608
        f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {quote(meta.pk.column)}"
    )
    return sql, fields
