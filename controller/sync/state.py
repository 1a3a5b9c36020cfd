"""In-memory view of the watched objects, fed by the watch handlers, read by the writer. No kopf here.

Besides the objects it tracks whether the first complete listing of every watched scope (a namespace, or
None for cluster-wide) has been processed: the writer must not write before that (docs/architecture.md,
decision 2).
The listing signal comes from the watch stream itself (see controller/cluster/listing.py), so an empty
namespace counts as listed too, which no per-object handler could tell.

A relisting (after a watch stream broke, e.g. the API server restarted) also prunes objects that are
not in the new listing: deletions that happened while the stream was down produce no DELETED event.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from controller.model import ResourceId, Snapshot

# A namespace (None: cluster-wide), optionally qualified by the resource when several are watched:
# (ResourceId("networking.k8s.io", "ingresses"), "tyk"), (ResourceId(GATEWAY_GROUP, "httproutes"), None).
# By resource, not kind: two resources of one kind in different API groups are listed apart.
Scope = str | None | tuple[ResourceId, str | None]
MAX_TOMBSTONES = 50_000


class ClusterState:
    def __init__(self, scopes: Iterable[Scope], on_change: Callable[[], None] = lambda: None) -> None:
        self.scopes: frozenset[Scope] = frozenset(scopes)
        self._on_change = on_change
        self._objects: dict[str, Snapshot] = {}
        # uids are never reused, so a deleted uid may safely swallow late events queued before its deletion.
        self._tombstones: OrderedDict[str, None] = OrderedDict()
        self._listing: dict[Scope, set[str]] = {}  # uids seen by a listing in progress
        self._unprocessed: set[str] = set()  # listed uids that no handler has processed yet
        self._listed: set[Scope] = set()
        self._seen: set[Scope] = set()  # scopes the listing hook reported at all
        self.generation = 0  # bumped on every change that can alter the plan
        self.first_unsynced_change: float | None = None  # monotonic time, for event-to-file latency

    # ---- fed by the watch-stream hook --------------------------------------------------------------

    def listing_started(self, scope: Scope) -> None:
        self._seen.add(scope)
        self._listing[scope] = set()

    def listed_object(self, scope: Scope, uid: str) -> None:
        self._listing.setdefault(scope, set()).add(uid)
        if uid not in self._objects:
            self._unprocessed.add(uid)

    def listing_complete(self, scope: Scope) -> list[Snapshot]:
        """Mark the scope listed; forget objects of the scope that the listing no longer has."""
        listed = self._listing.pop(scope, set())
        gone = [s for uid, s in self._objects.items() if self._in_scope(s, scope) and uid not in listed]
        for snap in gone:
            self._forget(snap.uid)
        first_time = scope not in self._listed
        self._listed.add(scope)
        if gone or first_time:
            self._changed()
        return gone

    # ---- fed by the event handler ------------------------------------------------------------------

    def apply(self, event_type: str | None, snap: Snapshot) -> bool:
        """Apply one watch event; True when it changed what the planner sees."""
        self._unprocessed.discard(snap.uid)
        if snap.uid in self._tombstones:
            return False
        if event_type == "DELETED":
            if snap.uid not in self._objects:
                return False
            self._forget(snap.uid)
            self._changed()
            return True
        if self._objects.get(snap.uid) == snap:
            return False
        self._objects[snap.uid] = snap
        self._changed()
        return True

    # ---- read by the writer ------------------------------------------------------------------------

    @property
    def listed(self) -> bool:
        """Every watched scope listed, and every listed object processed by the handler."""
        return self.scopes <= self._listed and not self._unprocessed

    def unheard_scopes(self) -> list[Scope]:
        """Scopes of which the listing hook never reported anything (controller/runner.py's check)."""
        return sorted((s for s in self.scopes if s not in self._seen), key=str)

    def snapshots(self) -> list[Snapshot]:
        return list(self._objects.values())

    def __len__(self) -> int:
        return len(self._objects)

    def take_first_change(self) -> float | None:
        first, self.first_unsynced_change = self.first_unsynced_change, None
        return first

    # ---- internals ---------------------------------------------------------------------------------

    @staticmethod
    def _in_scope(snap: Snapshot, scope: Scope) -> bool:
        if isinstance(scope, tuple):
            resource, namespace = scope
            return snap.resource == resource and (namespace is None or snap.namespace == namespace)
        return scope is None or snap.namespace == scope

    def _forget(self, uid: str) -> None:
        self._objects.pop(uid, None)
        self._unprocessed.discard(uid)
        self._tombstones[uid] = None
        while len(self._tombstones) > MAX_TOMBSTONES:
            self._tombstones.popitem(last=False)

    def _changed(self) -> None:
        self.generation += 1
        if self.first_unsynced_change is None:
            self.first_unsynced_change = time.monotonic()
        self._on_change()
