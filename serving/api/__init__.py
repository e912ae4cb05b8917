"""The HTTP layer's shared parts: route apps (`app.route_app`), the dependencies routes declare
(`dependencies`: the service's backends, the caller's role) and the typed bodies (`models`).
How to add a route: docs/serving-layout.md."""
