from django.db import migrations, models

# Room left free on each page of the order files table (PostgreSQL): a sub-order's staging
# updates every row of its pages in one statement, so half of a page is kept for the new
# versions of its rows; a HOT update needs its new tuple on the same page. The zip's marking
# (AVAILABLE -> DOWNLOADED) finds that room again once the page is pruned of the versions
# staging left behind. Existing pages keep their packing until rewritten.
FILLFACTOR = 50


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
