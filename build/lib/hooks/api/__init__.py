"""The API layer every hook shares: the Kubernetes kinds we read and write, and the types of
what the hooks write (statuses, history entries, targets, conditions).

Modules here are leaves: they import nothing from the rest of `hooks`.
"""
