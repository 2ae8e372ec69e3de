"""Credit risk of each customer from its own ledger: the payment index, the risk score and band, the
monthly snapshots behind "which accounts are getting riskier", and the customer's risk class."""
