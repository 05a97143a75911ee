"""Publishing: the dashboard's HTTP server (serves only the public folder, behind a path token)."""
from engine.publish.server import DashboardServer, dashboard_url, load_or_create_token, serve_public, token_path

__all__ = ["DashboardServer", "dashboard_url", "load_or_create_token", "serve_public", "token_path"]
