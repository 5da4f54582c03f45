"""The merchant console: server-rendered pages under /admin for the merchant's staff.

Each module is one area of the console and exports its `ROUTES`; `base.ConsoleHandler` signs staff
in, checks their role's permission and every state-changing request's CSRF token, renders pages in
`templates/` and records actions in the audit log. Pages call the same services as the merchant API.
"""
