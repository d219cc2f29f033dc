"""One blueprint per API resource."""
