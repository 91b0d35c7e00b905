from django.db import migrations, models

# Room left free on each page of the order files table (PostgreSQL), for HOT updates (the
# new version of a row on the row's own page, no index entry). A file's row changes state
# twice on the hot path, each time for a whole page of rows at once: staging (PENDING ->
# AVAILABLE, a sub-order's ONLINE files in one statement) and the zip's marking (AVAILABLE
# -> DOWNLOADED). Pages filled to 30% keep room for both new versions, so the marking stays
# HOT even when pruning the staging's old versions is held back (a concurrent snapshot, a
# VACUUM or ANALYZE holding the page): at 50% it was HOT only while pruning kept up, about
# half of it under load. The table is up to three times the packed size until vacuumed, as
# it was after the same two non-HOT updates (plus twice the index entries then). Existing
# pages keep their packing until rewritten.
FILLFACTOR = 30


def _set_fillfactor(value):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(apps.get_model("orders", "OrderDataFile")._meta.db_table)
        if value is None:
            schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")
        else:
            schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {int(value)})")
    return run


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0008_orderdatafile_order_no_db_constraint'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='orderdatafile',
            index=models.Index(fields=['sub_order', 'position'], name='orderfile_suborder_position'),
        ),
        migrations.RemoveIndex(
            model_name='orderdatafile',
            name='orderfile_order_state',
        ),
        migrations.RemoveIndex(
            model_name='orderdatafile',
            name='orderfile_suborder_state',
        ),
        migrations.RunPython(_set_fillfactor(FILLFACTOR), _set_fillfactor(None), elidable=False),
    ]
