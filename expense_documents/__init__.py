"""Expense documents (supplier invoices and receipts) synced to Dinero as purchase vouchers: setup
wizard, CSV import, workflow rules that opt documents out, the sync."""
