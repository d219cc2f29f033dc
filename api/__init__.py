"""The Flask API: app factory and one blueprint per resource."""
