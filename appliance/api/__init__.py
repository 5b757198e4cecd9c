"""The local dashboard's API: REST + server-sent events, auth, metrics, served by the daemon.

Kept import-light on purpose (no FastAPI here): ``appliance.api.schema`` registers the users
migration and is imported by every ``sunbox`` command through ``appliance.commands.demo``; the
web stack is imported only when the dashboard is actually served (``appliance.api.app``).
"""
