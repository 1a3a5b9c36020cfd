"""What the controller tells the world about itself: metrics and readiness, the HTTP server for
/metrics, /healthz and /readyz, and the log format."""
