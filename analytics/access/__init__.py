"""Who may do what: roles and permissions, user accounts, sign-in, sessions and the audit trail."""
