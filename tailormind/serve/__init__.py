"""Ray Serve: the model deployments (one per role) and, later, the HTTP generation API."""
