"""The customer portal: a customer's own invoices, statement, disputes, promises, payments and messages."""
