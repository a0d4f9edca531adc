"""pydockerd's Docker Engine API: the HTTP server (server, httputils) and one router per
resource (router.system, .images, .volumes, .build, .containers, .exec, .networks)."""
