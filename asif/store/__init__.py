"""The LanceDB anchor table: schema, row batches, the table, and its location."""
