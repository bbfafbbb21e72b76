"""Azure Storage: the accounts, one module per table, and the assignment queue."""
