"""``cloud-service bundle publish DIR --cohort C``, ``bundle list [--json]`` and ``bundle prune [--keep N]``.

Both run where the service's bundle folder is (``--bundle-dir``, as ``serve`` reads it) and on its Redis
(``--redis-url``): a bundle is hundreds of MB, so it is copied on the service's file system rather than sent
through the operator surface. ``publish`` signs with ``--policy-signing-key`` (the key that signs policies;
an unsigned bundle is never published) and prints the release as JSON. ``prune`` deletes the versions no
cohort points at, but for the newest ``--keep`` (:mod:`cloud_service.bundles.prune`), and prints what it did.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

from cloud_service.bundles.library import BundleLibrary
from cloud_service.bundles.pointers import ReleasePointers
from cloud_service.bundles.prune import PrunePlan, prune_bundles
from cloud_service.bundles.publish import publish_bundle
from cloud_service.config import ServiceConfig, config_from
from cloud_service.stores import open_redis_client, signer
from cloud_service.worker_command import add_service_flags
from confroute.contract.bundle_release import BundleRelease
from confroute.errors import InvalidInput


def add_commands(commands: Any) -> None:
    """``bundle publish``, ``bundle list`` and ``bundle prune``."""
    bundle = commands.add_parser("bundle", help="publish model bundles for the fleet's cohorts")
    actions = bundle.add_subparsers(required=True, metavar="ACTION")
    publish = actions.add_parser("publish", help="publish a bundle folder as a cohort's current bundle")
    publish.add_argument("folder", type=Path, help="the bundle folder (manifest.json and its files)")
    publish.add_argument("--cohort", default="default", help="the cohort whose devices get it (default: default)")
    add_service_flags(publish, ("redis_url", "policy_signing_key", "bundle_dir"), logging=False)
    publish.set_defaults(run=run_publish)
    listing = actions.add_parser("list", help="each cohort's current bundle and the bundles held")
    add_service_flags(listing, ("redis_url", "bundle_dir"), logging=False)
    listing.add_argument("--json", action="store_true", help="one JSON object")
    listing.set_defaults(run=run_list)
    prune = actions.add_parser("prune", help="delete the bundles no cohort's release points at")
    prune.add_argument("--keep", type=int, default=2,
                       help="unreferenced versions kept, the newest published first (default: 2)")
    prune.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
    add_service_flags(prune, ("redis_url", "bundle_dir"), logging=False)
    prune.set_defaults(run=run_prune)


def run_publish(args: argparse.Namespace) -> int:
    config = _config(args)
    key = signer(config)
    if key is None:
        raise InvalidInput("bundles are published signed: set --policy-signing-key", field="policy_signing_key")

    async def publish() -> BundleRelease:
        async with open_redis_client(config) as client:
            return await publish_bundle(args.folder, args.cohort, BundleLibrary(Path(config.bundle_dir)),
                                        ReleasePointers(client), key)

    print(json.dumps(_summary(asyncio.run(publish())), indent=2))
    return 0


def run_list(args: argparse.Namespace) -> int:
    config = _config(args)

    async def read() -> dict[str, BundleRelease]:
        async with open_redis_client(config) as client:
            return await ReleasePointers(client).all()

    releases = asyncio.run(read())
    held = BundleLibrary(Path(config.bundle_dir)).versions()
    if args.json:
        print(json.dumps({"cohorts": {c: _summary(r) for c, r in releases.items()}, "held": held}, indent=2))
        return 0
    for cohort, release in releases.items():
        print(f"{cohort}  {release.bundle_version}  {release.model_id}  {release.total_bytes} bytes  "
              f"{len(release.files)} files  key {release.key_id}")
    print(f"held in {config.bundle_dir}: {', '.join(held) or 'none'}")
    return 0


def run_prune(args: argparse.Namespace) -> int:
    config = _config(args)

    async def prune() -> PrunePlan:
        async with open_redis_client(config) as client:
            return await prune_bundles(BundleLibrary(Path(config.bundle_dir)), ReleasePointers(client),
                                       args.keep, dry_run=args.dry_run)

    print(json.dumps({**asyncio.run(prune()).as_dict(), "dry_run": args.dry_run}, indent=2))
    return 0


def _config(args: argparse.Namespace) -> ServiceConfig:
    config = config_from(args, os.environ)
    if not config.bundle_dir:
        raise InvalidInput("set --bundle-dir (or CONFROUTE_CLOUD_BUNDLE_DIR): the service's bundle folder",
                           field="bundle_dir")
    return config


def _summary(release: BundleRelease) -> dict[str, object]:
    return {"cohort": release.cohort, "bundle_version": release.bundle_version, "model_id": release.model_id,
            "issued_at_us": release.issued_at_us, "key_id": release.key_id, "bytes": release.total_bytes,
            "files": {f.name: {"size": f.size, "sha256": f.sha256} for f in release.files}}
