"""The customer portal: a customer, signed in by a link from an email, sees and acts on its own account.

`links` (links and portal sessions: the only way a page gets a `PortalCustomer`), `identity` (who the
portal session is), `account` (the only data functions the portal pages call).
"""
