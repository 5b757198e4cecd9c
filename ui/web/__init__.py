"""Dashboard front end, served by appliance.api."""
