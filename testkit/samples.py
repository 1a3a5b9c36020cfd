"""The user's Ingresses from the original request: what the demo and the e2e create."""

from __future__ import annotations

# (namespace, name, host)
TYK_INGRESSES: list[tuple[str, str, str]] = [
    ("tyk", "dashboard-ingress", "chart-dash.local"),
    ("tyk", "gateway-ingress", "chart-gw.local"),
    ("tyk", "mdcb-ingress", "chart-mdcb.local"),
    ("tyk-dp-1", "gateway-ingress", "chart-gw-dp-1.local"),
    ("tyk-dp-2", "gateway-ingress", "chart-gw-dp-2.local"),
]
