"""Invitations: issuing (tokens, rows, mails, audit at once), one user (service), a whole client
(bulk: plan, then apply), administrators (admin), the invitee's acceptance, and the ledger."""
