"""On PostgreSQL the database itself enforces the ledger: entries balance per transaction and currency (checked
at commit by a deferred constraint trigger), entries carry their account's currency, and neither entries nor
transactions can be updated or deleted. SQLite relies on `payments.ledger`, the only writer."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION payments_ledger_check_balanced() RETURNS trigger AS $$
DECLARE unbalanced RECORD; account_currency TEXT;
BEGIN
    SELECT currency INTO account_currency FROM payments_ledgeraccount WHERE id = NEW.account_id;
    IF account_currency IS DISTINCT FROM NEW.currency THEN
        RAISE EXCEPTION 'ledger entry % is in % but its account is in %', NEW.id, NEW.currency, account_currency;
    END IF;
    SELECT currency, SUM(amount) AS total INTO unbalanced FROM payments_ledgerentry
     WHERE transaction_id = NEW.transaction_id GROUP BY currency HAVING SUM(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % does not balance in % (%)',
            NEW.transaction_id, unbalanced.currency, unbalanced.total;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER payments_ledger_balanced
    AFTER INSERT ON payments_ledgerentry DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION payments_ledger_check_balanced();

CREATE OR REPLACE FUNCTION payments_ledger_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are never changed or deleted; post a correcting transaction instead';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER payments_ledgerentry_immutable BEFORE UPDATE OR DELETE ON payments_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION payments_ledger_immutable();
CREATE TRIGGER payments_ledgertransaction_immutable BEFORE UPDATE OR DELETE ON payments_ledgertransaction
    FOR EACH ROW EXECUTE FUNCTION payments_ledger_immutable();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS payments_ledgertransaction_immutable ON payments_ledgertransaction;
DROP TRIGGER IF EXISTS payments_ledgerentry_immutable ON payments_ledgerentry;
DROP TRIGGER IF EXISTS payments_ledger_balanced ON payments_ledgerentry;
DROP FUNCTION IF EXISTS payments_ledger_immutable();
DROP FUNCTION IF EXISTS payments_ledger_check_balanced();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # Straight to the cursor: the PL/pgSQL uses % placeholders that parameter interpolation would eat.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(FORWARD)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("payments", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
