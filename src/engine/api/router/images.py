"""Image routes (moby's router/image): pull and import, list, inspect, history, tag, remove,
push, save, load, prune; search answers that it is not supported."""
from __future__ import annotations

import os

from pyrunc.engine.api import httputils
from pyrunc.engine.api.router.system import decode_auth_header
from pyrunc.engine.api.server import Route
from pyrunc.engine.reference import parse_normalized
from pyrunc.engine.registry import AuthFile, Credentials, RegistryService
from pyrunc.errors import InvalidArgument, NotFound, Unauthorized

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pyrunc.engine.daemon import Engine


class RequestAuth(AuthFile):
    """Credentials for one request (X-Registry-Auth) or none; the daemon never reads or
    writes a credentials file."""

    def __init__(self, credentials: Credentials | None = None) -> None:
        super().__init__(os.devnull)
        self.credentials = credentials or Credentials()

    def get(self, domain: str) -> Credentials:
        return self.credentials

    def store(self, domain: str, credentials: Any) -> None:
        return None

    def erase(self, domain: str) -> bool:
        return False


def request_credentials(req: httputils.Request) -> Credentials | None:
    """The X-Registry-Auth header's credentials (None when it names none)."""
    doc = decode_auth_header(req.headers.get("X-Registry-Auth"))
    for key in ("username", "password", "identitytoken", "registrytoken"):
        if key in doc and not isinstance(doc[key], str):
            raise InvalidArgument("invalid X-Registry-Auth header: %s must be a string" % key)
    credentials = Credentials(doc.get("username", ""), doc.get("password", ""),
                              doc.get("identitytoken", ""))
    return credentials if credentials else None


def summaries(engine: Engine, filters: Any = None, shared: bool = False,
              all_images: bool = True) -> list[Any]:
    """ImageSummary dicts as API 1.43 has them: VirtualSize (the same as Size) and, when
    ``shared``, SharedSize; intermediate images only with ``all_images``."""
    images = engine.images.list(filters, all_images)
    sharing = engine.images.layer_usage()[0] if shared else {}
    for img in images:
        img["VirtualSize"] = img["Size"]
        if shared:
            img["SharedSize"] = sharing.get(img["Id"], 0)
    return images


class Images:
    """The handlers, over ``engine.images`` and the daemon's registry settings."""

    def __init__(self, engine: Engine, registries: RegistryService | None = None) -> None:
        self.engine = engine
        self.registries = registries or RegistryService(auth_file=RequestAuth())

    def _registries(self, req: httputils.Request) -> RegistryService:
        credentials = request_credentials(req)
        if credentials is None:
            return self.registries
        return RegistryService(self.registries.options, RequestAuth(credentials))

    def _platform(self, req: httputils.Request) -> Any:
        text = req.query("platform")
        if not text:
            return None
        from pyrunc.engine.platforms import parse_platform
        return parse_platform(text)

    def _progress(self, work: Callable[[Callable[[Any], None]], Any]) -> httputils.Response:
        producer = httputils.Producer(work).first()
        return httputils.stream(httputils.progress_stream(producer), "application/json")

    # POST /images/create: pull (fromImage) or import (fromSrc)
    def create(self, req: httputils.Request) -> httputils.Response:
        if req.query("fromSrc") is not None:
            return self._import(req)
        image = req.query("fromImage")
        if not image:
            raise InvalidArgument("fromImage or fromSrc is required")
        tag = req.query("tag") or ""
        refs = [image]
        if tag:
            refs = [image + ("@" if ":" in tag and tag.split(":")[0].startswith("sha") else ":")
                    + tag]
        platform = self._platform(req)
        registries = self._registries(req)
        parsed = parse_normalized(image)
        all_tags = not tag and parsed.tag is None and parsed.digest is None

        def work(emit: Callable[[Any], None]) -> None:
            from pyrunc.engine.distribution.pull import pull
            try:
                if all_tags:    # docker pull --all-tags: fromImage without a tag
                    tags = registries.get(parsed.domain).repository(parsed.path).tags()
                    refs[:] = [str(parsed.with_tag(t)) for t in sorted(tags)]
                    if not refs:
                        raise NotFound("no tags in repository %s" % parsed.familiar_name)
                for ref in refs:
                    pull(ref, self.engine.images, registries, platform=platform,
                         progress=emit)
            except Unauthorized as e:
                # dockerd answers "pull access denied" as not found: a 401 would make the
                # CLI ask for a user name and try again
                raise NotFound(e.message) from None
        return self._progress(work)

    def _import(self, req: httputils.Request) -> httputils.Response:
        source = req.query("fromSrc") or ""
        if source != "-":
            raise httputils.Unsupported("import from a URL (%s) is not supported: send the "
                                        "archive in the request body (fromSrc=-)" % source[:80])
        repo, tag = req.query("repo") or "", req.query("tag") or ""
        ref = None
        if repo:
            ref = repo + (":" + tag if tag else "")
        changes = req.query_lists.get("changes", [])
        message = req.query("message") or ""
        platform = self._platform(req)
        from pyrunc.engine.images.importer import import_image
        image_id = import_image(self.engine.images, req.body, ref=ref, changes=changes,
                                message=message, platform=platform)
        return httputils.stream([{"status": image_id}], "application/json")

    # GET /images/json
    def list(self, req: httputils.Request) -> httputils.Response:
        filters = req.filters()
        legacy = req.query("filter")
        if legacy:
            filters.setdefault("reference", []).append(legacy)
        return httputils.json_response(summaries(self.engine, filters,
                                                 req.query_bool("shared-size"),
                                                 req.query_bool("all")))

    def inspect(self, req: httputils.Request) -> httputils.Response:
        return httputils.json_response(self.engine.images.inspect(req.params["name"]))

    def history(self, req: httputils.Request) -> httputils.Response:
        return httputils.json_response(self.engine.images.history(req.params["name"]))

    def tag(self, req: httputils.Request) -> httputils.Response:
        repo = req.query("repo") or ""
        if not repo:
            raise InvalidArgument("repository name must have at least one component")
        tag = req.query("tag") or ""
        self.engine.images.tag(req.params["name"], repo + (":" + tag if tag else ""))
        return httputils.no_content(201)

    def remove(self, req: httputils.Request) -> httputils.Response:
        records = self.engine.images.remove(req.params["name"], force=req.query_bool("force"),
                                            prune=not req.query_bool("noprune"))
        return httputils.json_response(records)

    def push(self, req: httputils.Request) -> httputils.Response:
        name = req.params["name"]
        tag = req.query("tag") or ""
        ref = name + (":" + tag if tag else "")
        registries = self._registries(req)

        def work(emit: Callable[[Any], None]) -> None:
            from pyrunc.engine.distribution.push import push
            push(ref, self.engine.images.content, registries, images=self.engine.images,
                 progress=emit)
        return self._progress(work)

    def get(self, req: httputils.Request) -> httputils.Response:
        names = [req.params["name"]] if "name" in req.params else \
            req.query_lists.get("names", [])
        if not names:
            raise InvalidArgument("no image names given")
        for n in names:  # unknown names are a 404 before any byte is sent
            self.engine.images.get(n)

        def work(emit: Callable[[Any], None]) -> None:
            from pyrunc.engine.images.archive import save
            save(self.engine.images, names, httputils.Writer(emit))
        producer = httputils.Producer(work, depth=16).first()
        return httputils.stream(producer, "application/x-tar")

    def load(self, req: httputils.Request) -> httputils.Response:
        from pyrunc.engine.images.archive import load
        lines = load(self.engine.images, req.body)
        return httputils.stream([{"stream": line + "\n"} for line in lines], "application/json")

    def prune(self, req: httputils.Request) -> httputils.Response:
        filters = req.filters()
        dangling = filters.pop("dangling", ["true"])
        if len(dangling) != 1 or dangling[0].lower() not in ("true", "false", "1", "0"):
            raise InvalidArgument("invalid filter 'dangling=%s'" % ",".join(dangling))
        all_images = dangling[0].lower() in ("false", "0")
        return httputils.json_response(self.engine.images.prune(all_images, filters))

    def search(self, req: httputils.Request) -> httputils.Response:
        raise httputils.Unsupported("image search is not supported by this daemon (it keeps "
                                    "no index of a registry's repositories)")


def routes(engine: Engine, registries: RegistryService | None = None) -> list[Route]:
    """The image routes; ``registries`` holds the daemon's mirrors and insecure registries."""
    i = Images(engine, registries)
    return [
        Route("POST", "/images/create", i.create),
        Route("GET", "/images/json", i.list),
        Route("GET", "/images/search", i.search),
        Route("GET", "/images/get", i.get),
        Route("POST", "/images/load", i.load),
        Route("POST", "/images/prune", i.prune),
        Route("GET", "/images/{name:.*}/json", i.inspect),
        Route("GET", "/images/{name:.*}/history", i.history),
        Route("GET", "/images/{name:.*}/get", i.get),
        Route("POST", "/images/{name:.*}/tag", i.tag),
        Route("POST", "/images/{name:.*}/push", i.push),
        Route("DELETE", "/images/{name:.*}", i.remove),
    ]
